//! A gRPC server's inferences as AVA's inference metadata JSON (ava-spec §7), the body the
//! HttpExtension's services answer with, so both extensions publish the same events.
//!
//! The proto has two things the JSON schema lacks: `InferenceType::AUTO` (the kind is the payload
//! present) and `sequence_id` (a tracking id across frames), which goes into `extensions` as
//! `sequenceId` unless the server set that key itself.

use serde_json::{Map, Value, json};

use super::contract::{
    Attribute, Classification, Entity, Event, Inference, InferenceOther, Motion, Rectangle, Tag,
    Text, inference,
};
use crate::media::image::ImageLayout;

/// What is wrong with one inference (its index in the reply, and why).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("inferences[{index}]: {detail}")]
pub struct InferenceError {
    /// Position in the reply's list.
    pub index: usize,
    /// What is wrong.
    pub detail: String,
}

/// The reply's inferences as AVA JSON objects, or the first one that breaks the schema.
pub fn inferences_json(items: &[Inference]) -> Result<Vec<Value>, InferenceError> {
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            inference_json(item).map_err(|detail| InferenceError { index, detail })
        })
        .collect()
}

fn inference_json(i: &Inference) -> Result<Value, String> {
    use inference::{InferenceType, Value as Payload};
    let Some(payload) = &i.value else {
        return Err("no payload (classification, motion, entity, text, event or other)".into());
    };
    let (kind, declared) = match payload {
        Payload::Classification(_) => ("classification", InferenceType::Classification),
        Payload::Motion(_) => ("motion", InferenceType::Motion),
        Payload::Entity(_) => ("entity", InferenceType::Entity),
        Payload::Text(_) => ("text", InferenceType::Text),
        Payload::Event(_) => ("event", InferenceType::Event),
        Payload::Other(_) => ("other", InferenceType::Other),
    };
    if i.r#type != InferenceType::Auto as i32 && i.r#type != declared as i32 {
        let named = InferenceType::try_from(i.r#type)
            .map(|t| t.as_str_name().to_string())
            .unwrap_or_else(|_| i.r#type.to_string());
        return Err(format!("type {named} does not match its {kind} payload"));
    }
    let body = match payload {
        Payload::Classification(c) => {
            let mut body = json!({"tag": tag(c.tag.as_ref(), kind)?});
            if !c.attributes.is_empty() {
                body["attributes"] = attributes(&c.attributes);
            }
            body
        }
        Payload::Motion(m) => match &m.r#box {
            Some(b) => json!({"box": rectangle(b, kind)?}),
            None => json!({}),
        },
        Payload::Entity(e) => {
            let Some(b) = &e.r#box else {
                return Err("entity without a box".into());
            };
            let mut body = json!({"tag": tag(e.tag.as_ref(), kind)?, "box": rectangle(b, kind)?});
            if !e.id.is_empty() {
                body["id"] = json!(e.id);
            }
            if !e.attributes.is_empty() {
                body["attributes"] = attributes(&e.attributes);
            }
            body
        }
        Payload::Text(t) => {
            let mut body = json!({"value": t.value});
            if !t.language.is_empty() {
                body["language"] = json!(t.language);
            }
            if t.start_timestamp != 0 {
                body["startTimestamp"] = json!(t.start_timestamp);
            }
            if t.end_timestamp != 0 {
                body["endTimestamp"] = json!(t.end_timestamp);
            }
            body
        }
        Payload::Event(e) => {
            if e.name.is_empty() {
                return Err("event without a name".into());
            }
            json!({"name": e.name, "properties": sorted(&e.properties)})
        }
        Payload::Other(o) => {
            use base64::Engine as _;
            json!({
                "contentType": o.content_type,
                "contentBytes": base64::engine::general_purpose::STANDARD.encode(&o.content_bytes),
            })
        }
    };
    let mut out = Map::new();
    out.insert("type".into(), json!(kind));
    if !i.subtype.is_empty() {
        out.insert("subtype".into(), json!(i.subtype));
    }
    if !i.inference_id.is_empty() {
        out.insert("inferenceId".into(), json!(i.inference_id));
    }
    if !i.related_inferences.is_empty() {
        out.insert("relatedInferences".into(), json!(i.related_inferences));
    }
    out.insert(kind.into(), body);
    let mut extensions = i.extensions.clone();
    if !i.sequence_id.is_empty() {
        extensions
            .entry("sequenceId".into())
            .or_insert_with(|| i.sequence_id.clone());
    }
    if !extensions.is_empty() {
        out.insert("extensions".into(), sorted(&extensions));
    }
    Ok(Value::Object(out))
}

/// A map of strings as a JSON object with its keys in order (the proto's maps have none).
fn sorted(map: &std::collections::HashMap<String, String>) -> Value {
    let mut keys: Vec<_> = map.keys().collect();
    keys.sort();
    Value::Object(
        keys.into_iter()
            .map(|k| (k.clone(), json!(map[k])))
            .collect(),
    )
}

fn tag(t: Option<&Tag>, kind: &str) -> Result<Value, String> {
    match t {
        Some(t) if !t.value.is_empty() => {
            let confidence = round(t.confidence)
                .ok_or_else(|| format!("{kind}.tag.confidence is not a number"))?;
            Ok(json!({"value": t.value, "confidence": confidence}))
        }
        _ => Err(format!("{kind} needs a tag with a value")),
    }
}

fn attributes(list: &[Attribute]) -> Value {
    Value::Array(
        list.iter()
            .map(|a| {
                json!({"name": a.name, "value": a.value, "confidence": round(a.confidence).unwrap_or(0.0)})
            })
            .collect(),
    )
}

fn rectangle(b: &Rectangle, kind: &str) -> Result<Value, String> {
    let v =
        |x: f32| round(x).ok_or_else(|| format!("{kind}.box needs finite numbers l, t, w and h"));
    Ok(json!({"l": v(b.l)?, "t": v(b.t)?, "w": v(b.w)?, "h": v(b.h)?}))
}

/// An f32 as the decimal it was written as (0.9f32 is 0.8999999761…): six significant digits.
fn round(x: f32) -> Option<f64> {
    if !x.is_finite() {
        return None;
    }
    format!("{x:.6e}").parse::<f64>().ok()
}

/// An AVA inference JSON object (as Vigil's nodes produce: motion, a frame filter's results)
/// as the proto's, its box placed in the image sent (`layout`); `None` when it is not one.
pub fn inference_proto(v: &Value, layout: &ImageLayout) -> Option<Inference> {
    use inference::{InferenceType, Value as Payload};
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
    let number = |v: Option<&Value>| v.and_then(Value::as_f64).unwrap_or_default() as f32;
    let rectangle = |b: Option<&Value>| {
        let b = b?;
        let n = |k: &str| b.get(k).and_then(Value::as_f64);
        let [l, t, w, h] = layout.pad(n("l")?, n("t")?, n("w")?, n("h")?);
        Some(Rectangle {
            l: l as f32,
            t: t as f32,
            w: w as f32,
            h: h as f32,
        })
    };
    let tag = |t: Option<&Value>| {
        t.map(|t| Tag {
            value: text(t.get("value")),
            confidence: number(t.get("confidence")),
        })
    };
    let attributes = |a: Option<&Value>| {
        a.and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .map(|a| Attribute {
                        name: text(a.get("name")),
                        value: text(a.get("value")),
                        confidence: number(a.get("confidence")),
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let strings = |m: Option<&Value>| {
        m.and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str().map_or_else(|| v.to_string(), str::to_string),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let kind = v.get("type")?.as_str()?;
    let body = v.get(kind);
    let (kind, payload) = match kind {
        "motion" => (
            InferenceType::Motion,
            Payload::Motion(Motion {
                r#box: rectangle(body.and_then(|b| b.get("box"))),
            }),
        ),
        "entity" => (
            InferenceType::Entity,
            Payload::Entity(Entity {
                tag: tag(body?.get("tag")),
                attributes: attributes(body?.get("attributes")),
                r#box: rectangle(body?.get("box")),
                id: text(body?.get("id")),
            }),
        ),
        "classification" => (
            InferenceType::Classification,
            Payload::Classification(Classification {
                tag: tag(body?.get("tag")),
                attributes: attributes(body?.get("attributes")),
            }),
        ),
        "event" => (
            InferenceType::Event,
            Payload::Event(Event {
                name: text(body?.get("name")),
                properties: strings(body?.get("properties")),
            }),
        ),
        "text" => (
            InferenceType::Text,
            Payload::Text(Text {
                value: text(body?.get("value")),
                language: text(body?.get("language")),
                start_timestamp: body?
                    .get("startTimestamp")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
                end_timestamp: body?
                    .get("endTimestamp")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
            }),
        ),
        "other" => {
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text(body?.get("contentBytes")))
                .ok()?;
            (
                InferenceType::Other,
                Payload::Other(InferenceOther {
                    content_type: text(body?.get("contentType")),
                    content_bytes: bytes,
                }),
            )
        }
        _ => return None,
    };
    Some(Inference {
        r#type: kind as i32,
        subtype: text(v.get("subtype")),
        inference_id: text(v.get("inferenceId")),
        related_inferences: v
            .get("relatedInferences")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(|r| r.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        sequence_id: String::new(),
        value: Some(payload),
        extensions: strings(v.get("extensions")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::contract::{Entity, Event, Motion};

    fn entity(t: inference::InferenceType) -> Inference {
        Inference {
            r#type: t as i32,
            subtype: "objectDetection".into(),
            sequence_id: "track-7".into(),
            value: Some(inference::Value::Entity(Entity {
                tag: Some(Tag {
                    value: "truck".into(),
                    confidence: 0.9,
                }),
                attributes: vec![],
                r#box: Some(Rectangle {
                    l: 0.25,
                    t: 0.5,
                    w: 0.125,
                    h: 0.1,
                }),
                id: "7".into(),
            })),
            ..Default::default()
        }
    }

    #[test]
    fn an_entity_becomes_ava_json_with_its_tracking_id_in_extensions() {
        for t in [
            inference::InferenceType::Entity,
            inference::InferenceType::Auto,
        ] {
            let json = inferences_json(&[entity(t)]).expect("valid");
            assert_eq!(
                json[0],
                json!({
                    "type": "entity", "subtype": "objectDetection",
                    "entity": {"tag": {"value": "truck", "confidence": 0.9},
                               "box": {"l": 0.25, "t": 0.5, "w": 0.125, "h": 0.1}, "id": "7"},
                    "extensions": {"sequenceId": "track-7"}
                })
            );
        }
    }

    #[test]
    fn upstream_motion_goes_into_the_padded_image_and_back() {
        // 640×360 padded into 416×416: content 416×234 from y = 91.
        let layout = ImageLayout::new(
            640,
            360,
            Some(&crate::topology::model::ImageScale {
                mode: crate::topology::model::ScaleMode::Pad,
                width: Some(416),
                height: Some(416),
            }),
        );
        let motion =
            json!({"type": "motion", "motion": {"box": {"l": 0.5, "t": 0.0, "w": 0.25, "h": 1.0}}});
        let proto = inference_proto(&motion, &layout).expect("a motion inference");
        assert_eq!(proto.r#type, inference::InferenceType::Motion as i32);
        let Some(inference::Value::Motion(Motion { r#box: Some(b) })) = &proto.value else {
            panic!("{proto:?}");
        };
        assert!(
            (b.l - 0.5).abs() < 1e-6 && (b.w - 0.25).abs() < 1e-6,
            "{b:?}"
        );
        assert!(
            (f64::from(b.t) - 91.0 / 416.0).abs() < 1e-6,
            "below the top bar: {b:?}"
        );
        assert!((f64::from(b.h) - 234.0 / 416.0).abs() < 1e-6, "{b:?}");
        let back = layout
            .unpad(b.l.into(), b.t.into(), b.w.into(), b.h.into())
            .expect("inside");
        assert!(
            (back[1]).abs() < 1e-6 && (back[3] - 1.0).abs() < 1e-6,
            "{back:?}"
        );
        let entity = json!({"type": "entity", "subtype": "objectDetection", "inferenceId": "a",
            "entity": {"tag": {"value": "truck", "confidence": 0.9}, "box": {"l": 0, "t": 0, "w": 1, "h": 1}, "id": "7"},
            "extensions": {"k": "v"}});
        let proto = inference_proto(&entity, &layout).expect("an entity");
        assert_eq!(
            inferences_json(&[proto]).expect("valid")[0]["entity"]["tag"],
            json!({"value": "truck", "confidence": 0.9})
        );
        assert!(inference_proto(&json!({"type": "unknown"}), &layout).is_none());
    }

    #[test]
    fn broken_inferences_are_named_by_index() {
        let mismatched = entity(inference::InferenceType::Motion);
        let e = inferences_json(&[entity(inference::InferenceType::Entity), mismatched])
            .expect_err("refused");
        assert_eq!(e.index, 1);
        assert_eq!(e.detail, "type MOTION does not match its entity payload");
        let mut no_box = entity(inference::InferenceType::Entity);
        if let Some(inference::Value::Entity(en)) = &mut no_box.value {
            en.r#box = None;
        }
        assert_eq!(
            inferences_json(&[no_box]).expect_err("refused").detail,
            "entity without a box"
        );
        let nan = Inference {
            value: Some(inference::Value::Motion(Motion {
                r#box: Some(Rectangle {
                    l: f32::NAN,
                    ..Default::default()
                }),
            })),
            ..Default::default()
        };
        assert_eq!(
            inferences_json(&[nan]).expect_err("refused").detail,
            "motion.box needs finite numbers l, t, w and h"
        );
        let nameless = Inference {
            value: Some(inference::Value::Event(Event::default())),
            ..Default::default()
        };
        assert!(inferences_json(&[nameless]).is_err());
    }
}
