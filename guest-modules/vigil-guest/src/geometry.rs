//! Boxes and regions of interest, in normalised image coordinates (0..1 from the top-left).

use crate::types::Rect;

impl Rect {
    /// A rectangle from its left, top, width and height.
    pub const fn new(l: f32, t: f32, w: f32, h: f32) -> Self {
        Self { l, t, w, h }
    }

    /// The whole image.
    pub const WHOLE: Rect = Rect::new(0.0, 0.0, 1.0, 1.0);

    /// Right edge.
    pub fn right(&self) -> f32 {
        self.l + self.w
    }

    /// Bottom edge.
    pub fn bottom(&self) -> f32 {
        self.t + self.h
    }

    /// Area, as a fraction of the image.
    pub fn area(&self) -> f32 {
        self.w.max(0.0) * self.h.max(0.0)
    }

    /// Centre point (x, y).
    pub fn center(&self) -> (f32, f32) {
        (self.l + self.w / 2.0, self.t + self.h / 2.0)
    }

    /// Whether the point (x, y) is inside (edges included).
    pub fn contains(&self, x: f32, y: f32) -> bool {
        x >= self.l && x <= self.right() && y >= self.t && y <= self.bottom()
    }

    /// The overlap of two rectangles, if they overlap.
    pub fn intersection(&self, other: &Rect) -> Option<Rect> {
        let l = self.l.max(other.l);
        let t = self.t.max(other.t);
        let r = self.right().min(other.right());
        let b = self.bottom().min(other.bottom());
        (r > l && b > t).then(|| Rect::new(l, t, r - l, b - t))
    }

    /// Intersection over union, 0..1.
    pub fn iou(&self, other: &Rect) -> f32 {
        let inter = self.intersection(other).map_or(0.0, |r| r.area());
        let union = self.area() + other.area() - inter;
        if union > 0.0 { inter / union } else { 0.0 }
    }

    /// Clipped to the image.
    pub fn clamped(&self) -> Rect {
        let l = self.l.clamp(0.0, 1.0);
        let t = self.t.clamp(0.0, 1.0);
        Rect::new(
            l,
            t,
            (self.right().clamp(0.0, 1.0) - l).max(0.0),
            (self.bottom().clamp(0.0, 1.0) - t).max(0.0),
        )
    }

    /// Parses `l,t,w,h` (four numbers 0..1, width and height above 0).
    pub fn parse(text: &str) -> Result<Rect, String> {
        let parts: Vec<f32> = text
            .split(',')
            .map(|p| p.trim().parse::<f32>())
            .collect::<Result<_, _>>()
            .map_err(|_| format!("a box is four numbers l,t,w,h, not {text:?}"))?;
        match parts.as_slice() {
            [l, t, w, h]
                if [*l, *t, *w, *h].iter().all(|v| (0.0..=1.0).contains(v))
                    && *w > 0.0
                    && *h > 0.0 =>
            {
                Ok(Rect::new(*l, *t, *w, *h))
            }
            _ => Err(format!(
                "a box is four numbers l,t,w,h from 0 to 1 with w and h above 0, not {text:?}"
            )),
        }
    }
}

/// A region of interest: one or more rectangles; empty means the whole image.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Region {
    /// The rectangles.
    pub rects: Vec<Rect>,
}

impl Region {
    /// Parses rectangles `l,t,w,h` separated by `;` (empty text: the whole image).
    pub fn parse(text: &str) -> Result<Region, String> {
        let rects = text
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Rect::parse)
            .collect::<Result<_, _>>()?;
        Ok(Region { rects })
    }

    /// Whether the point is inside the region.
    pub fn contains(&self, x: f32, y: f32) -> bool {
        self.rects.is_empty() || self.rects.iter().any(|r| r.contains(x, y))
    }

    /// Whether a box's centre is inside the region.
    pub fn holds_center_of(&self, b: &Rect) -> bool {
        let (x, y) = b.center();
        self.contains(x, y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_overlap_and_regions_hold_centres() {
        let a = Rect::new(0.0, 0.0, 0.5, 0.5);
        let b = Rect::new(0.25, 0.25, 0.5, 0.5);
        assert_eq!(a.intersection(&b), Some(Rect::new(0.25, 0.25, 0.25, 0.25)));
        assert!((a.iou(&b) - 0.0625 / 0.4375).abs() < 1e-6);
        assert_eq!(a.intersection(&Rect::new(0.6, 0.6, 0.1, 0.1)), None);
        let region = Region::parse("0.5,0.5,0.5,0.5; 0,0,0.1,0.1").expect("parses");
        assert!(region.holds_center_of(&Rect::new(0.6, 0.6, 0.2, 0.2)));
        assert!(!region.holds_center_of(&a));
        assert!(Region::parse("").expect("empty").contains(0.9, 0.9));
        assert!(Rect::parse("0,0,0,1").is_err());
        assert!(Region::parse("1,2").is_err());
        let c = Rect::new(-0.1, 0.9, 0.3, 0.3).clamped();
        assert_eq!((c.l, c.t), (0.0, 0.9));
        assert!(
            (c.w - 0.2).abs() < 1e-6 && (c.h - 0.1).abs() < 1e-6,
            "{c:?}"
        );
    }
}
