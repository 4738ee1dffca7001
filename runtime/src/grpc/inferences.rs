//! A gRPC server's inferences as AVA's inference metadata JSON (ava-spec §7), the body the
//! HttpExtension's services answer with, so both extensions publish the same events.
//!
//! The proto has two things the JSON schema lacks: `InferenceType::AUTO` (the kind is the payload
//! present) and `sequence_id` (a tracking id across frames), which goes into `extensions` as
//! `sequenceId` unless the server set that key itself.

use serde_json::{Map, Value, json};

use super::contract::{Attribute, Inference, Rectangle, Tag, inference};

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
