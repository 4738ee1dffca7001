//! Inferences and configurations between the WIT types (0.2.0) and their JSON forms: AVA's
//! inference metadata schema (ava-spec §7) and a node's `configuration` object.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value as Json, json};

use super::bindings::{
    Attribute, Classification, Config, Entity, Frame, Inference, NamedEvent, Other, Payload, Plane,
    Rect, Tag, Text, Value,
};
use crate::media::decode::DecodedFrame;

/// A decoded, scaled frame as a frame filter gets it: its luma plane when `luma`, its RGB plane
/// when it was scaled with one (rows packed: the stride is the row).
pub fn frame_of(f: DecodedFrame, luma: bool) -> Frame {
    let (width, height) = (f.width, f.height);
    Frame {
        timestamp_ns: f.pts.as_nanos(),
        source_width: f.source_width,
        source_height: f.source_height,
        luma: luma.then_some(Plane {
            width,
            height,
            stride: width,
            data: f.luma,
        }),
        rgb: f.rgb.map(|data| Plane {
            width,
            height,
            stride: 3 * width,
            data,
        }),
    }
}

fn round(v: f32) -> f64 {
    (f64::from(v) * 1e6).round() / 1e6
}

fn rect_json(r: &Rect) -> Json {
    json!({"l": round(r.l), "t": round(r.t), "w": round(r.w), "h": round(r.h)})
}

fn tag_json(t: &Tag) -> Json {
    json!({"value": t.value, "confidence": round(t.confidence)})
}

fn attributes_json(list: &[Attribute]) -> Json {
    list.iter()
        .map(|a| json!({"name": a.name, "value": a.value, "confidence": round(a.confidence)}))
        .collect()
}

fn strings_json(pairs: &[(String, String)]) -> Json {
    Json::Object(pairs.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
}

/// Nanoseconds since the epoch as AVA's 90 kHz ticks, and back.
fn ticks(ns: i64) -> i64 {
    crate::media::time::MediaTime::from_nanos(ns).as_90khz_ticks()
}

/// The first nanosecond of the tick, so that [`ticks`] gives the tick back.
fn from_ticks(t: i64) -> i64 {
    (i128::from(t) * 100_000 + 8)
        .div_euclid(9)
        .clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// One inference as AVA JSON.
pub fn inference_json(i: &Inference) -> Json {
    let mut out = Map::new();
    let (kind, body) = match &i.payload {
        Payload::Motion(None) => ("motion", json!({})),
        Payload::Motion(Some(r)) => ("motion", json!({"box": rect_json(r)})),
        Payload::Entity(e) => {
            let mut entity = json!({"tag": tag_json(&e.tag), "box": rect_json(&e.box_)});
            if let Some(id) = &e.id {
                entity["id"] = json!(id);
            }
            if !e.attributes.is_empty() {
                entity["attributes"] = attributes_json(&e.attributes);
            }
            ("entity", entity)
        }
        Payload::Classification(c) => {
            let mut body = json!({"tag": tag_json(&c.tag)});
            if !c.attributes.is_empty() {
                body["attributes"] = attributes_json(&c.attributes);
            }
            ("classification", body)
        }
        Payload::Event(e) => {
            let mut body = json!({"name": e.name, "properties": strings_json(&e.properties)});
            if let Some(b) = &e.box_ {
                body["box"] = rect_json(b);
            }
            ("event", body)
        }
        Payload::Text(t) => {
            let mut body = json!({"value": t.value});
            if let Some(l) = &t.language {
                body["language"] = json!(l);
            }
            if let Some(s) = t.start_ns {
                body["startTimestamp"] = json!(ticks(s));
            }
            if let Some(e) = t.end_ns {
                body["endTimestamp"] = json!(ticks(e));
            }
            ("text", body)
        }
        Payload::Other(o) => (
            "other",
            json!({"contentType": o.content_type, "contentBytes": BASE64.encode(&o.content)}),
        ),
    };
    out.insert("type".into(), json!(kind));
    if let Some(s) = &i.subtype {
        out.insert("subtype".into(), json!(s));
    }
    if let Some(id) = &i.inference_id {
        out.insert("inferenceId".into(), json!(id));
    }
    if !i.related_inferences.is_empty() {
        out.insert("relatedInferences".into(), json!(i.related_inferences));
    }
    out.insert(kind.into(), body);
    if !i.extensions.is_empty() {
        out.insert("extensions".into(), strings_json(&i.extensions));
    }
    Json::Object(out)
}

fn rect(b: &Json) -> Option<Rect> {
    Some(Rect {
        l: b.get("l")?.as_f64()? as f32,
        t: b.get("t")?.as_f64()? as f32,
        w: b.get("w")?.as_f64()? as f32,
        h: b.get("h")?.as_f64()? as f32,
    })
}

fn tag(t: &Json) -> Option<Tag> {
    Some(Tag {
        value: t.get("value")?.as_str()?.to_string(),
        confidence: t.get("confidence").and_then(Json::as_f64).unwrap_or(1.0) as f32,
    })
}

fn attributes(v: Option<&Json>) -> Vec<Attribute> {
    v.and_then(Json::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|a| {
                    Some(Attribute {
                        name: a.get("name")?.as_str()?.to_string(),
                        value: text_of(a.get("value")?),
                        confidence: a.get("confidence").and_then(Json::as_f64).unwrap_or(1.0)
                            as f32,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A JSON value as text: a string as it is, anything else as JSON.
fn text_of(v: &Json) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

fn strings(v: Option<&Json>) -> Vec<(String, String)> {
    v.and_then(Json::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), text_of(v))).collect())
        .unwrap_or_default()
}

/// An AVA inference JSON object as a WIT inference; `None` when it is not one (no known `type`
/// or its payload lacks a required field).
pub fn inference_from_json(v: &Json) -> Option<Inference> {
    let kind = v.get("type")?.as_str()?;
    let body = v.get(kind);
    let payload = match kind {
        "motion" => Payload::Motion(body.and_then(|m| m.get("box")).and_then(rect)),
        "entity" => {
            let e = body?;
            Payload::Entity(Entity {
                tag: tag(e.get("tag")?)?,
                box_: rect(e.get("box")?)?,
                id: e.get("id").and_then(Json::as_str).map(str::to_string),
                attributes: attributes(e.get("attributes")),
            })
        }
        "classification" => {
            let c = body?;
            Payload::Classification(Classification {
                tag: tag(c.get("tag")?)?,
                attributes: attributes(c.get("attributes")),
            })
        }
        "event" => {
            let e = body?;
            Payload::Event(NamedEvent {
                name: e.get("name")?.as_str()?.to_string(),
                properties: strings(e.get("properties")),
                box_: e.get("box").and_then(rect),
            })
        }
        "text" => {
            let t = body?;
            Payload::Text(Text {
                value: t.get("value")?.as_str()?.to_string(),
                language: t.get("language").and_then(Json::as_str).map(str::to_string),
                start_ns: t
                    .get("startTimestamp")
                    .and_then(Json::as_i64)
                    .map(from_ticks),
                end_ns: t.get("endTimestamp").and_then(Json::as_i64).map(from_ticks),
            })
        }
        "other" => {
            let o = body?;
            Payload::Other(Other {
                content_type: o.get("contentType")?.as_str()?.to_string(),
                content: BASE64
                    .decode(o.get("contentBytes")?.as_str()?.as_bytes())
                    .ok()?,
            })
        }
        _ => return None,
    };
    Some(Inference {
        payload,
        subtype: v.get("subtype").and_then(Json::as_str).map(str::to_string),
        inference_id: v
            .get("inferenceId")
            .and_then(Json::as_str)
            .map(str::to_string),
        related_inferences: v
            .get("relatedInferences")
            .and_then(Json::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(Json::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        extensions: strings(v.get("extensions")),
    })
}

/// One configuration value as the topology wrote it.
pub fn config_value(v: &Json) -> Value {
    match v {
        Json::String(s) => Value::Text(s.clone()),
        Json::Bool(b) => Value::Flag(*b),
        Json::Number(n) => n
            .as_f64()
            .map(Value::Number)
            .unwrap_or_else(|| Value::Json(n.to_string())),
        other => Value::Json(other.to_string()),
    }
}

/// A node's configuration as the host keeps it: its `configuration` properties by name, as JSON.
pub type FilterConfig = Vec<(String, Json)>;

/// A node's configuration as 0.2.0 guests get it, typed.
pub fn config_typed(config: &FilterConfig) -> Config {
    config
        .iter()
        .map(|(k, v)| (k.clone(), config_value(v)))
        .collect()
}

/// A node's configuration as 0.1.0 guests get it: strings as they are, anything else as JSON.
pub fn config_text(config: &FilterConfig) -> Vec<(String, String)> {
    config
        .iter()
        .map(|(k, v)| (k.clone(), text_of(v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_ava_inferences() {
        let samples = [
            json!({"type": "motion", "motion": {"box": {"l": 0.48954, "t": 0.140741, "w": 0.075, "h": 0.058824}}}),
            json!({"type": "motion", "motion": {}}),
            json!({"type": "entity", "entity": {"tag": {"value": "truck", "confidence": 0.9}, "box": {"l": 0.1, "t": 0.2, "w": 0.3, "h": 0.4}}}),
            json!({"type": "entity", "subtype": "objectDetection", "inferenceId": "a1", "entity": {
                "tag": {"value": "person", "confidence": 0.75}, "box": {"l": 0.1, "t": 0.2, "w": 0.3, "h": 0.4},
                "id": "7", "attributes": [{"name": "color", "value": "red", "confidence": 0.5}]},
                "extensions": {"model": "ssd"}}),
            json!({"type": "classification", "relatedInferences": ["a1"], "classification": {"tag": {"value": "day", "confidence": 1.0}}}),
            json!({"type": "event", "subtype": "lineCrossing", "event": {"name": "line1", "properties": {"total": "3"}}}),
            json!({"type": "event", "event": {"name": "zone", "properties": {}, "box": {"l": 0.0, "t": 0.0, "w": 0.5, "h": 0.5}}}),
            json!({"type": "text", "text": {"value": "AB 123", "language": "en", "startTimestamp": 146_000_000_000_000i64, "endTimestamp": 146_000_000_090_000i64}}),
            json!({"type": "other", "other": {"contentType": "application/octet-stream", "contentBytes": "AAEC"}}),
        ];
        for s in samples {
            let i = inference_from_json(&s).expect("known type");
            assert_eq!(inference_json(&i), s);
        }
    }

    #[test]
    fn refuses_what_is_not_an_inference() {
        for bad in [
            json!({"type": "entity", "entity": {"tag": {"value": "x"}}}),
            json!({"type": "lidar"}),
            json!({"entity": {}}),
            json!({"type": "other", "other": {"contentType": "a", "contentBytes": "%%%"}}),
        ] {
            assert!(inference_from_json(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn configuration_keeps_its_types_and_reads_as_before_for_old_guests() {
        let config: FilterConfig = [
            ("labels", json!("truck")),
            ("minimumConfidence", json!(0.5)),
            ("count", json!(3)),
            ("on", json!(true)),
            ("roi", json!([0.1, 0.2])),
        ]
        .map(|(k, v)| (k.to_string(), v))
        .into();
        assert_eq!(
            config_text(&config),
            [
                ("labels", "truck"),
                ("minimumConfidence", "0.5"),
                ("count", "3"),
                ("on", "true"),
                ("roi", "[0.1,0.2]")
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        let typed = config_typed(&config);
        assert!(matches!(&typed[0].1, Value::Text(s) if s == "truck"));
        assert!(matches!(typed[1].1, Value::Number(n) if n == 0.5));
        assert!(matches!(typed[2].1, Value::Number(n) if n == 3.0));
        assert!(matches!(typed[3].1, Value::Flag(true)));
        assert!(matches!(&typed[4].1, Value::Json(s) if s == "[0.1,0.2]"));
    }
}
