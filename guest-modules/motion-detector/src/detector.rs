//! Motion detection on an 8-bit luma plane, in the manner of Frigate (running-average background,
//! absolute difference, threshold, dilate, connected regions with an area filter, nearby boxes
//! merged) and Motion (light-switch detection, isolated pixels ignored, threshold that follows the
//! noise level).
//!
//! Per frame:
//! 1. 3x3 box blur of the luma (sensor noise / 3).
//! 2. Global lighting model: a robust fit `frame ≈ gain * background + offset` over the pixels that
//!    did not change much. The background is corrected with it, so slow ramps (and auto exposure)
//!    leave no residual. A large per-frame change of the model, or a fit that most pixels
//!    disagree with, is a lighting change (IR switch, lights on): the background is re-seeded
//!    and no motion is reported.
//! 3. Residual `|frame - corrected background|`; noise sigma from its median (MAD); a pixel has
//!    changed when its residual exceeds `max(threshold, noise_factor * sigma)`.
//! 4. Despeckle: a changed pixel needs at least 3 changed neighbours (isolated pixels and thin
//!    lines go). If more than 40% of the image is left, it is a lighting change (as above).
//! 5. Dilate, 8-connected regions, boxes within a small gap merged; boxes are tight around the
//!    changed pixels, normalised to 0..1. A region is reported when its area (despeckled changed
//!    pixels) reaches the minimum and part of it also changed since the previous frame: a
//!    "ghost" (the background where an object stood) or an object that stopped is not motion.
//! 6. Background update: running average; slower in regions that move, faster in changed
//!    regions that do not (ghosts fade quickly).
//!
//! All buffers are allocated when the frame size is first seen and reused afterwards.

/// The sensitivity levels of AVA's MotionDetectionProcessor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sensitivity {
    Low,
    Medium,
    High,
}

/// What a sensitivity level means in numbers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Params {
    /// Minimum residual (luma levels, after the 3x3 blur) for a pixel to count as changed.
    pub threshold: f32,
    /// The per-pixel threshold is at least this many noise sigmas.
    pub noise_factor: f32,
    /// Minimum area of a region, as a fraction of the frame (despeckled changed pixels).
    pub min_area: f32,
}

impl Sensitivity {
    pub fn parse(s: &str) -> Option<Sensitivity> {
        let s = s.trim();
        [Sensitivity::Low, Sensitivity::Medium, Sensitivity::High]
            .into_iter()
            .find(|v| v.name().eq_ignore_ascii_case(s))
    }

    pub fn name(self) -> &'static str {
        match self {
            Sensitivity::Low => "low",
            Sensitivity::Medium => "medium",
            Sensitivity::High => "high",
        }
    }

    pub fn params(self) -> Params {
        match self {
            Sensitivity::Low => Params {
                threshold: 35.0,
                noise_factor: 5.0,
                min_area: 0.005,
            },
            Sensitivity::Medium => Params {
                threshold: 25.0,
                noise_factor: 4.0,
                min_area: 0.0015,
            },
            Sensitivity::High => Params {
                threshold: 15.0,
                noise_factor: 3.0,
                min_area: 0.0004,
            },
        }
    }
}

/// Frames that only seed the background after a (re)start or a change of frame size.
pub const WARMUP_FRAMES: u32 = 4;
/// Frames after a lighting change during which the background is relearnt fast and no motion
/// is reported.
pub const SETTLE_FRAMES: u32 = 2;
/// Background learning rate where no motion was found.
const ALPHA_STILL: f32 = 0.05;
/// Background learning rate on changed pixels of a region that moves (enough of it differs
/// from the previous frame too).
const ALPHA_MOTION: f32 = 0.025;
/// Background learning rate on changed pixels of a region that does not move: ghosts and
/// objects that stopped are absorbed in a few seconds.
const ALPHA_STATIC: f32 = 0.1;
/// A region needs at least 1/this of its area to have changed since the previous frame.
const MOVING_SHARE: usize = 16;
/// Background learning rate while settling after a lighting change.
const ALPHA_SETTLE: f32 = 0.5;
/// More than this fraction of changed pixels (after despeckle) is a lighting change.
const LIGHT_FRACTION: f32 = 0.40;
/// A global brightness change of more than this many levels from one frame to the next is a
/// lighting change.
const LIGHT_SHIFT: f32 = 24.0;
/// A global contrast (gain) change outside this range from one frame to the next is a
/// lighting change.
const LIGHT_GAIN: (f32, f32) = (0.75, 1.33);
/// Pixels whose difference from the median difference exceeds this take no part in the
/// lighting fit (moving objects, mostly).
const FIT_GATE: f32 = 40.0;
/// If fewer than this fraction of pixels agree with the median difference, most of the image
/// changed in different ways: a lighting change.
const FIT_MIN_INLIERS: f32 = 0.5;
/// Ridge term of the gain fit (levels²): pulls the gain towards 1 on flat scenes.
const FIT_RIDGE: f64 = 16.0;
/// At most this many regions are reported (the largest).
const MAX_REGIONS: usize = 32;
/// Bins per luma level of the residual histogram (noise estimate), and its size.
const NOISE_BINS_PER_LEVEL: f32 = 4.0;
const NOISE_BINS: usize = 256;

/// A moving region, normalised to the frame: left, top, width, height in 0..1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Region {
    pub l: f32,
    pub t: f32,
    pub w: f32,
    pub h: f32,
}

/// What the detector did with the last frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Phase {
    /// No frame yet, or the frame was unusable.
    #[default]
    Idle,
    /// Seeding the background.
    WarmUp,
    /// This frame was a lighting change: background re-seeded.
    LightingChange,
    /// Relearning the background after a lighting change.
    Settling,
    /// Normal detection.
    Detecting,
}

/// Numbers about the last frame, for tests and diagnostics.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stats {
    pub phase: Phase,
    /// Per-pixel threshold used (levels).
    pub threshold: f32,
    /// Estimated noise sigma of the residual (levels).
    pub noise_sigma: f32,
    /// Global brightness change since the previous frame (levels).
    pub shift: f32,
    /// Global contrast change since the previous frame.
    pub gain: f32,
    /// Fraction of pixels changed after despeckle.
    pub changed_fraction: f32,
}

/// A box in pixels, inclusive, with its area in changed pixels.
#[derive(Clone, Copy, Debug)]
struct PixelBox {
    x0: usize,
    y0: usize,
    x1: usize,
    y1: usize,
    area: usize,
    /// Of `area`, the pixels that also changed since the previous frame.
    moving: usize,
    /// Index of the box this one was merged into (itself when not merged).
    root: usize,
}

impl PixelBox {
    fn near(&self, o: &PixelBox, gap: usize) -> bool {
        self.x0 <= o.x1 + gap
            && o.x0 <= self.x1 + gap
            && self.y0 <= o.y1 + gap
            && o.y0 <= self.y1 + gap
    }

    fn absorb(&mut self, o: &PixelBox) {
        self.x0 = self.x0.min(o.x0);
        self.y0 = self.y0.min(o.y0);
        self.x1 = self.x1.max(o.x1);
        self.y1 = self.y1.max(o.y1);
        self.area += o.area;
        self.moving += o.moving;
    }
}

pub struct Detector {
    params: Params,
    width: usize,
    height: usize,
    /// Frames seeded into the background since the last (re)start.
    seeded: u32,
    /// Frames left to settle after a lighting change.
    settle: u32,
    /// Background (blurred luma, float).
    bg: Vec<f32>,
    /// Current frame, blurred.
    cur: Vec<f32>,
    /// Previous frame, blurred.
    prev: Vec<f32>,
    /// This frame's lighting fit (gain, offset) and per-pixel threshold.
    gain: f32,
    offset: f32,
    threshold: f32,
    /// |residual| per pixel.
    diff: Vec<f32>,
    /// Horizontal blur sums.
    rows: Vec<u16>,
    /// Changed pixels, then dilated and consumed by the region search.
    mask: Vec<u8>,
    /// Changed pixels after despeckle.
    spots: Vec<u8>,
    /// Dilation scratch, then the changed pixels that also changed since the previous frame.
    scratch: Vec<u8>,
    stack: Vec<u32>,
    /// Region index of each pixel of the dilated mask.
    labels: Vec<u32>,
    boxes: Vec<PixelBox>,
    /// Per region index: 1 when its (merged) region moves.
    region_moves: Vec<u8>,
    /// Regions to report, by index.
    picked: Vec<usize>,
    hist: Vec<u32>,
    /// Four histograms counted side by side (see [`Counts`]).
    sub_hists: Vec<u32>,
    regions: Vec<Region>,
    stats: Stats,
}

impl Detector {
    pub fn new(sensitivity: Sensitivity) -> Detector {
        Detector::with_params(sensitivity.params())
    }

    pub fn with_params(params: Params) -> Detector {
        Detector {
            params,
            width: 0,
            height: 0,
            seeded: 0,
            settle: 0,
            bg: Vec::new(),
            cur: Vec::new(),
            prev: Vec::new(),
            gain: 1.0,
            offset: 0.0,
            threshold: 0.0,
            diff: Vec::new(),
            rows: Vec::new(),
            mask: Vec::new(),
            spots: Vec::new(),
            scratch: Vec::new(),
            stack: Vec::new(),
            labels: Vec::new(),
            boxes: Vec::new(),
            region_moves: Vec::new(),
            picked: Vec::new(),
            hist: Vec::new(),
            sub_hists: Vec::new(),
            regions: Vec::new(),
            stats: Stats::default(),
        }
    }

    pub fn params(&self) -> Params {
        self.params
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Forgets the background: the next frames seed it again.
    pub fn reset(&mut self) {
        self.seeded = 0;
        self.settle = 0;
    }

    /// Processes one frame (`luma` is `stride * height` bytes, `width <= stride`) and returns the
    /// moving regions, largest first; empty when nothing moved.
    pub fn process(&mut self, width: u32, height: u32, stride: u32, luma: &[u8]) -> &[Region] {
        self.regions.clear();
        self.stats = Stats {
            gain: 1.0,
            ..Stats::default()
        };
        let (w, h, s) = (width as usize, height as usize, stride as usize);
        if w == 0 || h == 0 || s < w || luma.len() < s * (h - 1) + w {
            return &self.regions;
        }
        if w != self.width || h != self.height {
            self.resize(w, h);
        }
        self.blur(luma, s);
        self.step();
        std::mem::swap(&mut self.cur, &mut self.prev);
        &self.regions
    }

    /// Runs the blurred frame in `cur` through the current phase.
    fn step(&mut self) {
        if self.seeded < WARMUP_FRAMES {
            if self.seeded == 0 {
                self.bg.copy_from_slice(&self.cur);
            } else {
                // Cumulative mean of the warm-up frames.
                self.learn_uniform(1.0 / (self.seeded + 1) as f32);
            }
            self.seeded += 1;
            self.stats.phase = Phase::WarmUp;
            return;
        }
        if self.settle > 0 {
            self.learn_uniform(ALPHA_SETTLE);
            self.settle -= 1;
            self.stats.phase = Phase::Settling;
            return;
        }

        let Some((gain, offset, shift)) = self.fit_lighting() else {
            self.lighting_change();
            return;
        };
        self.stats.gain = gain;
        self.stats.shift = shift;
        if shift.abs() > LIGHT_SHIFT || gain < LIGHT_GAIN.0 || gain > LIGHT_GAIN.1 {
            self.lighting_change();
            return;
        }

        let threshold = self.residuals(gain, offset);
        (self.gain, self.offset, self.threshold) = (gain, offset, threshold);
        let n = self.cur.len();
        let mut any = false;
        for (m, &d) in self.mask.iter_mut().zip(&self.diff) {
            *m = (d > threshold) as u8;
            any |= *m != 0;
        }
        let changed = if any { self.despeckle() } else { 0 };
        self.stats.changed_fraction = changed as f32 / n as f32;
        self.stats.phase = Phase::Detecting;
        if self.stats.changed_fraction > LIGHT_FRACTION {
            self.lighting_change();
            return;
        }

        if changed > 0 {
            self.dilate();
            self.mark_moving();
            self.find_regions();
            self.learn_by_region();
        } else {
            self.learn_uniform(ALPHA_STILL);
        }
    }

    fn resize(&mut self, w: usize, h: usize) {
        let n = w * h;
        self.width = w;
        self.height = h;
        self.bg.resize(n, 0.0);
        self.cur.resize(n, 0.0);
        self.prev.resize(n, 0.0);
        self.diff.resize(n, 0.0);
        self.rows.resize(n, 0);
        self.mask.resize(n, 0);
        self.spots.resize(n, 0);
        self.scratch.resize(n, 0);
        self.labels.resize(n, 0);
        self.hist.resize(512.max(NOISE_BINS), 0);
        self.sub_hists.resize(4 * 512.max(NOISE_BINS), 0);
        self.reset();
    }

    /// 3x3 box blur with replicated edges, into `cur`.
    fn blur(&mut self, luma: &[u8], stride: usize) {
        let (w, h) = (self.width, self.height);
        for y in 0..h {
            let row = &luma[y * stride..y * stride + w];
            let out = &mut self.rows[y * w..(y + 1) * w];
            if w == 1 {
                out[0] = 3 * row[0] as u16;
                continue;
            }
            out[0] = 2 * row[0] as u16 + row[1] as u16;
            for (o, ((&l, &m), &r)) in out[1..w - 1]
                .iter_mut()
                .zip(row.iter().zip(&row[1..]).zip(&row[2..]))
            {
                *o = l as u16 + m as u16 + r as u16;
            }
            out[w - 1] = row[w - 2] as u16 + 2 * row[w - 1] as u16;
        }
        for y in 0..h {
            let (above, below) = (y.saturating_sub(1), (y + 1).min(h - 1));
            let (a, m, b) = (
                &self.rows[above * w..][..w],
                &self.rows[y * w..][..w],
                &self.rows[below * w..][..w],
            );
            for (((c, &a), &m), &b) in self.cur[y * w..(y + 1) * w].iter_mut().zip(a).zip(m).zip(b)
            {
                *c = (a + m + b) as f32 * (1.0 / 9.0);
            }
        }
    }

    /// Background update after a frame with changes: changed pixels learn at their region's
    /// rate (moving or static), the others at the still rate. Runs of 16 pixels without a
    /// change (most of a frame) take the uniform path, which vectorises.
    fn learn_by_region(&mut self) {
        let (bg16, bg_rest) = self.bg.as_chunks_mut::<16>();
        let (cur16, cur_rest) = self.cur.as_chunks::<16>();
        let (spots16, spots_rest) = self.spots.as_chunks::<16>();
        let (labels16, labels_rest) = self.labels.as_chunks::<16>();
        let moves = &self.region_moves;
        let one = |b: &mut f32, c: f32, spot: u8, label: u32| {
            let a = if spot == 0 {
                ALPHA_STILL
            } else if moves[label as usize] != 0 {
                ALPHA_MOTION
            } else {
                ALPHA_STATIC
            };
            *b += a * (c - *b);
        };
        for (((b, c), s), l) in bg16.iter_mut().zip(cur16).zip(spots16).zip(labels16) {
            if u128::from_ne_bytes(*s) == 0 {
                for (b, &c) in b.iter_mut().zip(c) {
                    *b += ALPHA_STILL * (c - *b);
                }
            } else {
                for j in 0..16 {
                    one(&mut b[j], c[j], s[j], l[j]);
                }
            }
        }
        for (((b, &c), &s), &l) in bg_rest
            .iter_mut()
            .zip(cur_rest)
            .zip(spots_rest)
            .zip(labels_rest)
        {
            one(b, c, s, l);
        }
    }

    fn learn_uniform(&mut self, alpha: f32) {
        for (b, &c) in self.bg.iter_mut().zip(&self.cur) {
            *b += alpha * (c - *b);
        }
    }

    /// Re-seeds the background from the current frame; nothing is reported.
    fn lighting_change(&mut self) {
        self.regions.clear();
        self.bg.copy_from_slice(&self.cur);
        self.settle = SETTLE_FRAMES;
        self.stats.phase = Phase::LightingChange;
    }

    /// Fits `cur ≈ gain * bg + offset` over the pixels near the median difference.
    /// Returns (gain, offset, mean shift), or None when too few pixels agree.
    fn fit_lighting(&mut self) -> Option<(f32, f32, f32)> {
        let n = self.cur.len();
        // Round to the nearest level, offset by 256 (c - b is within ±255): a float add and a
        // truncating cast, where `round()` is a libm call per pixel on wasm.
        let bin = |c: f32, b: f32| ((c - b + 256.5) as i32).clamp(0, 511) as usize;
        let mut counts = Counts::new(&mut self.sub_hists, 512);
        let (cur4, cur_rest) = self.cur.as_chunks::<4>();
        let (bg4, bg_rest) = self.bg.as_chunks::<4>();
        for (c, b) in cur4.iter().zip(bg4) {
            counts.four([
                bin(c[0], b[0]),
                bin(c[1], b[1]),
                bin(c[2], b[2]),
                bin(c[3], b[3]),
            ]);
        }
        for (&c, &b) in cur_rest.iter().zip(bg_rest) {
            counts.one(bin(c, b));
        }
        let hist = &mut self.hist[..512];
        counts.sum_into(hist);
        let median = median_bin(hist, n) as f32 - 256.0;

        // Sums over the pixels near the median difference: per row in four f32 lanes (which
        // vectorise; a row's sums stay far inside f32's precision), rows added in f64.
        let (mut k, mut sx, mut sy, mut sxx, mut sxy) = (0f64, 0f64, 0f64, 0f64, 0f64);
        let w = self.width.max(1);
        for (cur, bg) in self.cur.chunks(w).zip(self.bg.chunks(w)) {
            let (mut k4, mut sx4, mut sy4, mut sxx4, mut sxy4) =
                ([0f32; 4], [0f32; 4], [0f32; 4], [0f32; 4], [0f32; 4]);
            let (cur4, cur_rest) = cur.as_chunks::<4>();
            let (bg4, bg_rest) = bg.as_chunks::<4>();
            for (c, b) in cur4.iter().zip(bg4) {
                let inside: [f32; 4] = std::array::from_fn(|j| {
                    if (c[j] - b[j] - median).abs() < FIT_GATE {
                        1.0
                    } else {
                        0.0
                    }
                });
                for j in 0..4 {
                    let (x, y) = (inside[j] * b[j], inside[j] * c[j]);
                    k4[j] += inside[j];
                    sx4[j] += x;
                    sy4[j] += y;
                    sxx4[j] += x * b[j];
                    sxy4[j] += x * c[j];
                }
            }
            let total = |l: [f32; 4]| l.iter().map(|&v| v as f64).sum::<f64>();
            k += total(k4);
            sx += total(sx4);
            sy += total(sy4);
            sxx += total(sxx4);
            sxy += total(sxy4);
            for (&c, &b) in cur_rest.iter().zip(bg_rest) {
                if (c - b - median).abs() < FIT_GATE {
                    let (x, y) = (b as f64, c as f64);
                    k += 1.0;
                    sx += x;
                    sy += y;
                    sxx += x * x;
                    sxy += x * y;
                }
            }
        }
        if (k as f32) < FIT_MIN_INLIERS * n as f32 {
            return None;
        }
        let kf = k;
        let (mx, my) = (sx / kf, sy / kf);
        let var = (sxx / kf - mx * mx).max(0.0);
        let cov = sxy / kf - mx * my;
        let gain = ((cov + FIT_RIDGE) / (var + FIT_RIDGE)).clamp(0.5, 2.0);
        let offset = my - gain * mx;
        Some((gain as f32, offset as f32, (my - mx) as f32))
    }

    /// Corrects the background for the lighting, fills `diff` with |residual|, estimates the
    /// noise and returns the per-pixel threshold.
    fn residuals(&mut self, gain: f32, offset: f32) -> f32 {
        let n = self.cur.len();
        for ((b, &c), d) in self.bg.iter_mut().zip(&self.cur).zip(self.diff.iter_mut()) {
            *b = gain * *b + offset;
            *d = (c - *b).abs();
        }
        let bin = |r: f32| ((r * NOISE_BINS_PER_LEVEL) as usize).min(NOISE_BINS - 1);
        let mut counts = Counts::new(&mut self.sub_hists, NOISE_BINS);
        let (diff4, diff_rest) = self.diff.as_chunks::<4>();
        for d in diff4 {
            counts.four([bin(d[0]), bin(d[1]), bin(d[2]), bin(d[3])]);
        }
        for &d in diff_rest {
            counts.one(bin(d));
        }
        let hist = &mut self.hist[..NOISE_BINS];
        counts.sum_into(hist);
        let mad = (median_bin(hist, n) as f32 + 0.5) / NOISE_BINS_PER_LEVEL;
        let sigma = 1.4826 * mad;
        let threshold = self.params.threshold.max(self.params.noise_factor * sigma);
        self.stats.noise_sigma = sigma;
        self.stats.threshold = threshold;
        threshold
    }

    /// Keeps changed pixels with at least 3 changed neighbours (in `spots`); returns their count.
    /// The 3x3 counts are separable sums (a row's three, then three rows'), in whole-row passes
    /// that vectorise; `scratch` holds the row sums.
    fn despeckle(&mut self) -> usize {
        let (w, h) = (self.width, self.height);
        for y in 0..h {
            let src = &self.mask[y * w..(y + 1) * w];
            let dst = &mut self.scratch[y * w..(y + 1) * w];
            dst.copy_from_slice(src);
            if w > 1 {
                add_shifted(&mut dst[1..], &src[..w - 1]);
                add_shifted(&mut dst[..w - 1], &src[1..]);
            }
        }
        let mut count = 0;
        for y in 0..h {
            let (above, below) = (y.saturating_sub(1), (y + 1).min(h - 1));
            let row = &self.scratch[y * w..(y + 1) * w];
            let out = &mut self.spots[y * w..(y + 1) * w];
            out.copy_from_slice(row);
            if above != y {
                add_shifted(out, &self.scratch[above * w..(above + 1) * w]);
            }
            if below != y {
                add_shifted(out, &self.scratch[below * w..(below + 1) * w]);
            }
            let mask = &self.mask[y * w..(y + 1) * w];
            for (o, &m) in out.iter_mut().zip(mask) {
                // itself + at least 3
                *o = (m != 0 && *o > 3) as u8;
                count += *o as usize;
            }
        }
        count
    }

    /// Dilation radius in pixels: 2 at 320 wide.
    fn radius(&self) -> usize {
        (self.width / 160).clamp(1, 4)
    }

    /// `mask` = `spots` dilated by a square of side 2r+1, as shifted whole-row ORs (they
    /// vectorise): along each row into `scratch`, then across rows.
    fn dilate(&mut self) {
        let (w, h, r) = (self.width, self.height, self.radius());
        for y in 0..h {
            let src = &self.spots[y * w..(y + 1) * w];
            let dst = &mut self.scratch[y * w..(y + 1) * w];
            dst.copy_from_slice(src);
            for d in 1..=r.min(w - 1) {
                or_shifted(&mut dst[d..], &src[..w - d]);
                or_shifted(&mut dst[..w - d], &src[d..]);
            }
        }
        for y in 0..h {
            let (y0, y1) = (y.saturating_sub(r), (y + r).min(h - 1));
            let out = &mut self.mask[y * w..(y + 1) * w];
            out.fill(0);
            for yy in y0..=y1 {
                or_shifted(out, &self.scratch[yy * w..(yy + 1) * w]);
            }
        }
    }

    /// `scratch` = changed pixels (`spots`) that also changed since the previous frame (with the
    /// same lighting correction as the background).
    fn mark_moving(&mut self) {
        let (gain, offset, threshold) = (self.gain, self.offset, self.threshold);
        // Branch-free (`&`, not `&&`), so that it vectorises.
        for (((m, &s), &c), &p) in self
            .scratch
            .iter_mut()
            .zip(&self.spots)
            .zip(&self.cur)
            .zip(&self.prev)
        {
            *m = ((s != 0) & ((c - (gain * p + offset)).abs() > threshold)) as u8;
        }
    }

    /// 8-connected regions of `mask` (consumed, each pixel labelled with its region in `labels`),
    /// boxed around their `spots`, merged when close, filtered by area and movement; fills
    /// `regions` and `region_moves`.
    fn find_regions(&mut self) {
        let (w, h) = (self.width, self.height);
        self.boxes.clear();
        let mut next = 0;
        while next < w * h {
            // Skip 16 clear pixels at a time (most of a frame), then one at a time.
            if let Some(chunk) = self.mask.get(next..next + 16)
                && u128::from_ne_bytes(chunk.try_into().unwrap_or([1; 16])) == 0
            {
                next += 16;
                continue;
            }
            let start = next;
            next += 1;
            if self.mask[start] == 0 {
                continue;
            }
            let k = self.boxes.len();
            self.mask[start] = 0;
            self.stack.clear();
            self.stack.push(start as u32);
            let mut b = PixelBox {
                x0: usize::MAX,
                y0: usize::MAX,
                x1: 0,
                y1: 0,
                area: 0,
                moving: 0,
                root: k,
            };
            while let Some(i) = self.stack.pop() {
                let i = i as usize;
                self.labels[i] = k as u32;
                let (x, y) = (i % w, i / w);
                if self.spots[i] != 0 {
                    let moving = self.scratch[i] as usize;
                    b.absorb(&PixelBox {
                        x0: x,
                        y0: y,
                        x1: x,
                        y1: y,
                        area: 1,
                        moving,
                        root: k,
                    });
                }
                for yy in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                    for xx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                        let j = yy * w + xx;
                        if self.mask[j] != 0 {
                            self.mask[j] = 0;
                            self.stack.push(j as u32);
                        }
                    }
                }
            }
            // Every region holds at least one changed pixel: the dilation grew from them.
            self.boxes.push(b);
        }

        // Merge boxes that overlap or nearly touch (parts of one object), until none do; a box
        // merged into another keeps the index of the one that absorbed it (always lower).
        let gap = (w.max(h) / 40).max(2);
        let mut merged = true;
        while merged {
            merged = false;
            for i in 0..self.boxes.len() {
                if self.boxes[i].root != i {
                    continue;
                }
                for j in i + 1..self.boxes.len() {
                    if self.boxes[j].root == j && self.boxes[i].near(&self.boxes[j], gap) {
                        let o = self.boxes[j];
                        self.boxes[i].absorb(&o);
                        self.boxes[j].root = i;
                        merged = true;
                    }
                }
            }
        }
        for k in 0..self.boxes.len() {
            self.boxes[k].root = self.boxes[self.boxes[k].root].root;
        }

        // A region moves when enough of it changed since the previous frame; it is reported
        // when it also has the minimum area.
        let min_area = ((self.params.min_area * (w * h) as f32).ceil() as usize).max(4);
        self.region_moves.clear();
        self.picked.clear();
        for k in 0..self.boxes.len() {
            let b = self.boxes[self.boxes[k].root];
            let moves = b.moving >= (b.area / MOVING_SHARE).max(2);
            self.region_moves.push(moves as u8);
            if self.boxes[k].root == k && moves && b.area >= min_area {
                self.picked.push(k);
            }
        }
        let boxes = &self.boxes;
        self.picked
            .sort_unstable_by(|&a, &b| boxes[b].area.cmp(&boxes[a].area));
        self.picked.truncate(MAX_REGIONS);
        let (wf, hf) = (w as f32, h as f32);
        self.regions.extend(self.picked.iter().map(|&k| {
            let b = &boxes[k];
            Region {
                l: b.x0 as f32 / wf,
                t: b.y0 as f32 / hf,
                w: (b.x1 + 1 - b.x0) as f32 / wf,
                h: (b.y1 + 1 - b.y0) as f32 / hf,
            }
        }));
    }
}

/// Index of the bin holding the median of `total` samples.
/// A histogram counted as four side by side, four values per step: consecutive pixels mostly
/// fall in the same bin, and one counter would make each step wait for the last one's store.
struct Counts<'a> {
    parts: [&'a mut [u32]; 4],
}

impl<'a> Counts<'a> {
    /// Four cleared histograms of `bins` bins in `space` (at least `4 * bins` long).
    fn new(space: &'a mut [u32], bins: usize) -> Counts<'a> {
        let space = &mut space[..4 * bins];
        space.fill(0);
        let (a, rest) = space.split_at_mut(bins);
        let (b, rest) = rest.split_at_mut(bins);
        let (c, d) = rest.split_at_mut(bins);
        Counts {
            parts: [a, b, c, d],
        }
    }

    /// Counts four values (each below `bins`).
    fn four(&mut self, bins: [usize; 4]) {
        for (part, bin) in self.parts.iter_mut().zip(bins) {
            part[bin] += 1;
        }
    }

    /// Counts one value.
    fn one(&mut self, bin: usize) {
        self.parts[0][bin] += 1;
    }

    /// The sum of the four into `hist` (`bins` long).
    fn sum_into(self, hist: &mut [u32]) {
        let [a, b, c, d] = self.parts;
        for (i, h) in hist.iter_mut().enumerate() {
            *h = a[i] + b[i] + c[i] + d[i];
        }
    }
}

/// `dst[i] += src[i]` over the shorter of the two.
fn add_shifted(dst: &mut [u8], src: &[u8]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d += s;
    }
}

/// `dst[i] |= src[i]` over the shorter of the two.
fn or_shifted(dst: &mut [u8], src: &[u8]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d |= s;
    }
}

fn median_bin(hist: &[u32], total: usize) -> usize {
    let half = total.div_ceil(2) as u64;
    let mut acc = 0u64;
    for (i, &c) in hist.iter().enumerate() {
        acc += c as u64;
        if acc >= half {
            return i;
        }
    }
    hist.len() - 1
}

#[cfg(test)]
#[path = "detector/tests.rs"] // explicit: the host's benchmark includes this file by path
mod tests;
