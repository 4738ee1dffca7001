//! Building and reading inferences and frames.

use crate::types::{
    Classification, Entity, Event, Frame, Inference, NamedEvent, Payload, Plane, Rect, Tag,
};

impl Inference {
    /// An inference with only its payload.
    pub fn of(payload: Payload) -> Self {
        Self {
            payload,
            subtype: None,
            inference_id: None,
            related_inferences: Vec::new(),
            extensions: Vec::new(),
        }
    }

    /// Motion, in `region` when known.
    pub fn motion(region: Option<Rect>) -> Self {
        Self::of(Payload::Motion(region))
    }

    /// A detected object.
    pub fn entity(label: &str, confidence: f32, b: Rect) -> Self {
        Self::of(Payload::Entity(Entity {
            tag: Tag {
                value: label.to_string(),
                confidence,
            },
            box_: b,
            id: None,
            attributes: Vec::new(),
        }))
    }

    /// A whole-image label.
    pub fn classification(label: &str, confidence: f32) -> Self {
        Self::of(Payload::Classification(Classification {
            tag: Tag {
                value: label.to_string(),
                confidence,
            },
            attributes: Vec::new(),
        }))
    }

    /// A named event with string properties (what opens a signal gate, for instance).
    pub fn event(name: &str, properties: &[(&str, String)]) -> Self {
        Self::of(Payload::Event(NamedEvent {
            name: name.to_string(),
            properties: properties
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            box_: None,
        }))
    }

    /// The same inference with a subtype.
    pub fn with_subtype(mut self, subtype: &str) -> Self {
        self.subtype = Some(subtype.to_string());
        self
    }

    /// The detected object, when this is one.
    pub fn as_entity(&self) -> Option<&Entity> {
        match &self.payload {
            Payload::Entity(e) => Some(e),
            _ => None,
        }
    }

    /// The label and confidence of an entity or classification.
    pub fn tag(&self) -> Option<&Tag> {
        match &self.payload {
            Payload::Entity(e) => Some(&e.tag),
            Payload::Classification(c) => Some(&c.tag),
            _ => None,
        }
    }
}

impl Event {
    /// An event at `timestamp_ns` with these inferences.
    pub fn new(timestamp_ns: i64, inferences: Vec<Inference>) -> Self {
        Self {
            timestamp_ns,
            inferences,
        }
    }
}

impl Plane {
    /// Row `y` (its first `width` pixels; for RGB, `3 * width` bytes), when inside the plane.
    pub fn row(&self, y: u32, bytes_per_pixel: u32) -> Option<&[u8]> {
        if y >= self.height {
            return None;
        }
        let start = y as usize * self.stride as usize;
        self.data
            .get(start..start + (self.width * bytes_per_pixel) as usize)
    }
}

impl Frame {
    /// Width and height of the planes sent (the luma's, else the RGB's).
    pub fn size(&self) -> (u32, u32) {
        self.luma
            .as_ref()
            .or(self.rgb.as_ref())
            .map_or((0, 0), |p| (p.width, p.height))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_respect_the_stride() {
        let p = Plane {
            width: 2,
            height: 2,
            stride: 4,
            data: vec![1, 2, 0, 0, 3, 4, 0, 0],
        };
        assert_eq!(p.row(1, 1), Some(&[3u8, 4][..]));
        assert_eq!(p.row(2, 1), None);
        let i = Inference::entity("truck", 0.9, Rect::WHOLE).with_subtype("objectDetection");
        assert_eq!(i.tag().map(|t| t.value.as_str()), Some("truck"));
        assert_eq!(i.subtype.as_deref(), Some("objectDetection"));
    }
}
