//! Components built against `vigil:filter@0.1.0`: the host's 0.2.0 values converted to what such
//! a guest reads, and its answers back. What 0.1.0 has no place for is left out of its input
//! (attributes, boxes of named events, text and other inferences, AVA's optional fields); a 0.1.0
//! guest sees exactly what it saw before 0.2.0 existed.

use super::bindings::v1::frame::vigil::filter::types as old;
use super::bindings::{
    Classification, Entity, Event, Frame, Inference, NamedEvent, Payload, Plane, Rect, Tag,
};

fn rect(r: old::Rect) -> Rect {
    Rect {
        l: r.l,
        t: r.t,
        w: r.w,
        h: r.h,
    }
}

fn old_rect(r: Rect) -> old::Rect {
    old::Rect {
        l: r.l,
        t: r.t,
        w: r.w,
        h: r.h,
    }
}

fn tag(t: old::Tag) -> Tag {
    Tag {
        value: t.value,
        confidence: t.confidence,
    }
}

fn old_tag(t: Tag) -> old::Tag {
    old::Tag {
        value: t.value,
        confidence: t.confidence,
    }
}

/// A 0.1.0 guest's inference in the host's terms.
pub fn inference(i: old::Inference) -> Inference {
    Inference::of(match i {
        old::Inference::Motion(r) => Payload::Motion(r.map(rect)),
        old::Inference::Entity(e) => Payload::Entity(Entity {
            tag: tag(e.tag),
            box_: rect(e.box_),
            id: e.id,
            attributes: Vec::new(),
        }),
        old::Inference::Classification(t) => Payload::Classification(Classification {
            tag: tag(t),
            attributes: Vec::new(),
        }),
        old::Inference::Event(e) => Payload::Event(NamedEvent {
            name: e.name,
            properties: e.properties,
            box_: None,
        }),
    })
}

/// The host's inference as a 0.1.0 guest reads it; `None` for kinds 0.1.0 does not have.
pub fn old_inference(i: Inference) -> Option<old::Inference> {
    Some(match i.payload {
        Payload::Motion(r) => old::Inference::Motion(r.map(old_rect)),
        Payload::Entity(e) => old::Inference::Entity(old::Entity {
            tag: old_tag(e.tag),
            box_: old_rect(e.box_),
            id: e.id,
        }),
        Payload::Classification(c) => old::Inference::Classification(old_tag(c.tag)),
        Payload::Event(e) => old::Inference::Event(old::NamedEvent {
            name: e.name,
            properties: e.properties,
        }),
        Payload::Text(_) | Payload::Other(_) => return None,
    })
}

/// A 0.1.0 guest's event in the host's terms.
pub fn event(e: old::Event) -> Event {
    Event {
        timestamp_ns: e.timestamp_ns,
        inferences: e.inferences.into_iter().map(inference).collect(),
    }
}

/// The host's event as a 0.1.0 guest reads it.
pub fn old_event(e: Event) -> old::Event {
    old::Event {
        timestamp_ns: e.timestamp_ns,
        inferences: e.inferences.into_iter().filter_map(old_inference).collect(),
    }
}

/// Rows of `bytes_per_row` bytes out of a plane with a longer stride (moved when already tight).
fn tight(p: Plane, bytes_per_row: usize) -> Vec<u8> {
    let stride = p.stride as usize;
    if stride == bytes_per_row {
        return p.data;
    }
    p.data
        .chunks(stride.max(1))
        .take(p.height as usize)
        .flat_map(|row| &row[..bytes_per_row.min(row.len())])
        .copied()
        .collect()
}

/// The host's frame as a 0.1.0 guest reads it (luma rows exactly `width` bytes; a guest of that
/// version always gets luma). `None` when the frame has no luma plane.
pub fn old_frame(f: Frame) -> Option<old::Frame> {
    let luma = f.luma?;
    let (width, height) = (luma.width, luma.height);
    let rgb = f.rgb.map(|p| {
        let row = 3 * p.width as usize;
        tight(p, row)
    });
    Some(old::Frame {
        width,
        height,
        stride: width,
        timestamp_ns: f.timestamp_ns,
        luma: tight(luma, width as usize),
        rgb,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_padded_plane_reaches_an_old_guest_with_tight_rows() {
        let frame = Frame {
            timestamp_ns: 5,
            source_width: 1920,
            source_height: 1080,
            luma: Some(Plane {
                width: 3,
                height: 2,
                stride: 4,
                data: vec![1, 2, 3, 0, 4, 5, 6, 0],
            }),
            rgb: None,
        };
        let old = old_frame(frame).expect("luma");
        assert_eq!((old.width, old.height, old.stride), (3, 2, 3));
        assert_eq!(old.luma, [1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn kinds_an_old_guest_lacks_are_left_out() {
        let event = Event {
            timestamp_ns: 1,
            inferences: vec![
                Inference::of(Payload::Text(super::super::bindings::Text {
                    value: "AB".into(),
                    language: None,
                    start_ns: None,
                    end_ns: None,
                })),
                Inference::of(Payload::Motion(None)),
            ],
        };
        let old = old_event(event);
        assert!(matches!(
            old.inferences.as_slice(),
            [old::Inference::Motion(None)]
        ));
    }
}
