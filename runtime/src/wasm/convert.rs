//! Inferences between the WIT types and AVA's JSON inference schema (ava-spec §7).

use serde_json::{Value, json};

use super::bindings::{Entity, Inference, NamedEvent, Rect, Tag};

fn rect_json(r: &Rect) -> Value {
    json!({"l": round(r.l), "t": round(r.t), "w": round(r.w), "h": round(r.h)})
}

fn round(v: f32) -> f64 {
    (f64::from(v) * 1e6).round() / 1e6
}

fn tag_json(t: &Tag) -> Value {
    json!({"value": t.value, "confidence": round(t.confidence)})
}

/// One inference as AVA JSON.
pub fn inference_json(i: &Inference) -> Value {
    match i {
        Inference::Motion(None) => json!({"type": "motion", "motion": {}}),
        Inference::Motion(Some(r)) => json!({"type": "motion", "motion": {"box": rect_json(r)}}),
        Inference::Entity(e) => {
            let mut entity = json!({"tag": tag_json(&e.tag), "box": rect_json(&e.box_)});
            if let Some(id) = &e.id {
                entity["id"] = json!(id);
            }
            json!({"type": "entity", "entity": entity})
        }
        Inference::Classification(t) => {
            json!({"type": "classification", "classification": {"tag": tag_json(t)}})
        }
        Inference::Event(e) => {
            let props: serde_json::Map<String, Value> = e
                .properties
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            json!({"type": "event", "event": {"name": e.name, "properties": props}})
        }
    }
}

/// An AVA inference JSON object as a WIT inference; `None` for types the WIT has no case for.
pub fn inference_from_json(v: &Value) -> Option<Inference> {
    let rect = |b: &Value| -> Option<Rect> {
        Some(Rect {
            l: b.get("l")?.as_f64()? as f32,
            t: b.get("t")?.as_f64()? as f32,
            w: b.get("w")?.as_f64()? as f32,
            h: b.get("h")?.as_f64()? as f32,
        })
    };
    let tag = |t: &Value| -> Option<Tag> {
        Some(Tag {
            value: t.get("value")?.as_str()?.to_string(),
            confidence: t.get("confidence").and_then(Value::as_f64).unwrap_or(1.0) as f32,
        })
    };
    match v.get("type")?.as_str()? {
        "motion" => Some(Inference::Motion(
            v.get("motion").and_then(|m| m.get("box")).and_then(rect),
        )),
        "entity" => {
            let e = v.get("entity")?;
            Some(Inference::Entity(Entity {
                tag: tag(e.get("tag")?)?,
                box_: rect(e.get("box")?)?,
                id: e.get("id").and_then(Value::as_str).map(str::to_string),
            }))
        }
        "classification" => Some(Inference::Classification(tag(v
            .get("classification")?
            .get("tag")?)?)),
        "event" => {
            let e = v.get("event")?;
            let properties = e
                .get("properties")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                v.as_str()
                                    .map(str::to_string)
                                    .unwrap_or_else(|| v.to_string()),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some(Inference::Event(NamedEvent {
                name: e.get("name")?.as_str()?.to_string(),
                properties,
            }))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_ava_inferences() {
        let samples = [
            json!({"type": "motion", "motion": {"box": {"l": 0.48954, "t": 0.140741, "w": 0.075, "h": 0.058824}}}),
            json!({"type": "entity", "entity": {"tag": {"value": "truck", "confidence": 0.9}, "box": {"l": 0.1, "t": 0.2, "w": 0.3, "h": 0.4}}}),
            json!({"type": "event", "event": {"name": "line1", "properties": {"total": "3"}}}),
        ];
        for s in samples {
            let i = inference_from_json(&s).expect("known type");
            assert_eq!(inference_json(&i), s);
        }
    }
}
