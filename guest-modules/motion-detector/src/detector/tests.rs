//! Synthetic-frame tests of the detector.

use super::*;

const W: usize = 320;
const H: usize = 180;

/// xorshift64*: deterministic noise without dependencies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Approximately normal, sigma 1 (sum of 12 uniforms).
    fn gauss(&mut self) -> f32 {
        (0..12).map(|_| self.unit()).sum::<f32>() - 6.0
    }
}

/// A textured static scene, values about 40..160.
fn scene(x: usize, y: usize) -> f32 {
    let (xf, yf) = (x as f32, y as f32);
    90.0 + 30.0 * (xf / 13.0).sin() + 20.0 * (yf / 7.0).cos() + 0.1 * xf - 0.1 * yf
}

/// A box drawn into a frame: top-left corner, size, luma.
#[derive(Clone, Copy)]
struct Box_ {
    x: usize,
    y: usize,
    w: usize,
    h: usize,
    luma: f32,
}

/// Renders `gain * scene + offset`, optional boxes, gaussian noise of `sigma`.
fn frame(rng: &mut Rng, gain: f32, offset: f32, sigma: f32, boxes: &[Box_]) -> Vec<u8> {
    let mut f = vec![0u8; W * H];
    for y in 0..H {
        for x in 0..W {
            let mut v = gain * scene(x, y) + offset;
            for b in boxes {
                if x >= b.x && x < b.x + b.w && y >= b.y && y < b.y + b.h {
                    v = gain * b.luma + offset;
                }
            }
            if sigma > 0.0 {
                v += sigma * rng.gauss();
            }
            f[y * W + x] = v.round().clamp(0.0, 255.0) as u8;
        }
    }
    f
}

fn run(d: &mut Detector, f: &[u8]) -> Vec<Region> {
    d.process(W as u32, H as u32, W as u32, f).to_vec()
}

/// Feeds `n` frames of the static scene (warm-up and settling).
fn warm(d: &mut Detector, rng: &mut Rng, sigma: f32, n: usize) {
    for _ in 0..n {
        assert!(run(d, &frame(rng, 1.0, 0.0, sigma, &[])).is_empty());
    }
}

fn covers(r: &Region, b: &Box_) -> bool {
    let (cx, cy) = (
        (b.x as f32 + b.w as f32 / 2.0) / W as f32,
        (b.y as f32 + b.h as f32 / 2.0) / H as f32,
    );
    r.l <= cx && cx <= r.l + r.w && r.t <= cy && cy <= r.t + r.h
}

#[test]
fn warm_up_reports_nothing_then_detects() {
    let mut d = Detector::new(Sensitivity::Medium);
    let mut rng = Rng(1);
    let b = Box_ {
        x: 100,
        y: 60,
        w: 30,
        h: 30,
        luma: 240.0,
    };
    // During warm-up even a box that appears is not reported.
    assert!(run(&mut d, &frame(&mut rng, 1.0, 0.0, 0.0, &[])).is_empty());
    for _ in 1..WARMUP_FRAMES {
        assert!(run(&mut d, &frame(&mut rng, 1.0, 0.0, 0.0, &[b])).is_empty());
        assert_eq!(d.stats().phase, Phase::WarmUp);
    }
    // The box was partly learnt during warm-up, but far from fully.
    let b2 = Box_ { x: 200, ..b };
    let r = run(&mut d, &frame(&mut rng, 1.0, 0.0, 0.0, &[b2]));
    assert!(r.iter().any(|r| covers(r, &b2)), "{r:?}");
}

#[test]
fn static_scene_no_motion() {
    for sensitivity in [Sensitivity::Low, Sensitivity::Medium, Sensitivity::High] {
        for sigma in [0.0, 3.0] {
            let mut d = Detector::new(sensitivity);
            let mut rng = Rng(2);
            for i in 0..100 {
                let r = run(&mut d, &frame(&mut rng, 1.0, 0.0, sigma, &[]));
                assert!(
                    r.is_empty(),
                    "{sensitivity:?} sigma {sigma} frame {i}: {r:?} {:?}",
                    d.stats()
                );
            }
        }
    }
}

fn moving_box(luma: f32) {
    let mut d = Detector::new(Sensitivity::Medium);
    let mut rng = Rng(3);
    warm(&mut d, &mut rng, 2.0, 20);
    for i in 0..40 {
        let b = Box_ {
            x: 30 + 6 * i,
            y: 70,
            w: 24,
            h: 24,
            luma,
        };
        let r = run(&mut d, &frame(&mut rng, 1.0, 0.0, 2.0, &[b]));
        assert_eq!(r.len(), 1, "frame {i}: {r:?} {:?}", d.stats());
        let r = r[0];
        assert!(covers(&r, &b), "frame {i}: {r:?}");
        // Tight around the box (its trail fades into the background quickly).
        let (bl, bt) = (b.x as f32 / W as f32, b.y as f32 / H as f32);
        let (bw, bh) = (b.w as f32 / W as f32, b.h as f32 / H as f32);
        assert!(
            (r.l - bl).abs() < 0.03 && (r.t - bt).abs() < 0.03,
            "frame {i}: {r:?}"
        );
        assert!(
            r.w < 1.5 * bw && r.h < 1.3 * bh && r.w > 0.7 * bw && r.h > 0.7 * bh,
            "frame {i}: {r:?}"
        );
    }
    // The box leaves: motion stops within a few frames.
    let mut quiet = 0;
    for _ in 0..10 {
        if run(&mut d, &frame(&mut rng, 1.0, 0.0, 2.0, &[])).is_empty() {
            quiet += 1;
        }
    }
    assert!(quiet >= 9, "{quiet}");
}

#[test]
fn moving_bright_box_detected() {
    moving_box(240.0);
}

#[test]
fn moving_dark_box_detected() {
    moving_box(10.0);
}

#[test]
fn two_separate_boxes_are_two_regions() {
    let mut d = Detector::new(Sensitivity::Medium);
    let mut rng = Rng(4);
    warm(&mut d, &mut rng, 2.0, 10);
    let a = Box_ {
        x: 20,
        y: 20,
        w: 20,
        h: 30,
        luma: 230.0,
    };
    let b = Box_ {
        x: 250,
        y: 120,
        w: 30,
        h: 20,
        luma: 5.0,
    };
    let r = run(&mut d, &frame(&mut rng, 1.0, 0.0, 2.0, &[a, b]));
    assert_eq!(r.len(), 2, "{r:?}");
    assert!(
        r.iter().any(|r| covers(r, &a)) && r.iter().any(|r| covers(r, &b)),
        "{r:?}"
    );
}

#[test]
fn brightness_ramp_with_noise_no_motion() {
    let mut d = Detector::new(Sensitivity::Medium);
    let mut rng = Rng(5);
    warm(&mut d, &mut rng, 4.0, 10);
    // +2 levels per frame for 60 frames (scene reaches ~280 at its brightest: some clipping).
    for i in 0..60 {
        let r = run(
            &mut d,
            &frame(&mut rng, 1.0, 2.0 * (i + 1) as f32, 4.0, &[]),
        );
        assert!(r.is_empty(), "frame {i}: {r:?} {:?}", d.stats());
    }
    // And down again, faster.
    for i in 0..30 {
        let r = run(
            &mut d,
            &frame(&mut rng, 1.0, 120.0 - 4.0 * (i + 1) as f32, 4.0, &[]),
        );
        assert!(r.is_empty(), "down frame {i}: {r:?} {:?}", d.stats());
    }
}

#[test]
fn contrast_ramp_no_motion_and_detection_during_ramp() {
    let mut d = Detector::new(Sensitivity::Medium);
    let mut rng = Rng(6);
    warm(&mut d, &mut rng, 3.0, 10);
    // Gain 1.0 -> 0.4 over 60 frames (dusk), a box crossing in the second half.
    for i in 0..60 {
        let gain = 1.0 - 0.01 * (i + 1) as f32;
        let boxes: Vec<Box_> = if i >= 30 {
            vec![Box_ {
                x: 40 + 5 * (i - 30),
                y: 40,
                w: 30,
                h: 30,
                luma: 250.0,
            }]
        } else {
            vec![]
        };
        let r = run(&mut d, &frame(&mut rng, gain, 0.0, 3.0, &boxes));
        if boxes.is_empty() {
            assert!(r.is_empty(), "frame {i}: {r:?} {:?}", d.stats());
        } else {
            assert!(
                r.iter().any(|r| covers(r, &boxes[0])),
                "frame {i}: {r:?} {:?}",
                d.stats()
            );
        }
    }
}

#[test]
fn ir_switch_is_not_motion_and_detection_resumes() {
    for (gain, offset) in [(1.0, 60.0), (1.0, -60.0), (0.5, 80.0), (1.3, 30.0)] {
        let mut d = Detector::new(Sensitivity::Medium);
        let mut rng = Rng(7);
        warm(&mut d, &mut rng, 3.0, 20);
        let mut reported = 0;
        for _ in 0..15 {
            if !run(&mut d, &frame(&mut rng, gain, offset, 3.0, &[])).is_empty() {
                reported += 1;
            }
        }
        assert!(
            reported <= 1,
            "gain {gain} offset {offset}: motion on {reported} frames"
        );
        // Normal detection afterwards.
        for i in 0..10 {
            let b = Box_ {
                x: 60 + 8 * i,
                y: 100,
                w: 24,
                h: 24,
                luma: if offset > 0.0 { 0.0 } else { 250.0 },
            };
            let r = run(&mut d, &frame(&mut rng, gain, offset, 3.0, &[b]));
            assert!(
                r.iter().any(|r| covers(r, &b)),
                "gain {gain} offset {offset} frame {i}: {r:?} {:?}",
                d.stats()
            );
        }
    }
}

#[test]
fn object_that_stops_or_leaves_is_not_motion() {
    let mut d = Detector::new(Sensitivity::Medium);
    let mut rng = Rng(16);
    warm(&mut d, &mut rng, 2.0, 10);
    let at = |i: usize| Box_ {
        x: 40 + 6 * i,
        y: 50,
        w: 30,
        h: 30,
        luma: 230.0,
    };
    for i in 0..10 {
        assert!(
            !run(&mut d, &frame(&mut rng, 1.0, 0.0, 2.0, &[at(i)])).is_empty(),
            "moving frame {i}"
        );
    }
    // Stops: at most one more frame of motion.
    let reported = (0..30)
        .filter(|_| !run(&mut d, &frame(&mut rng, 1.0, 0.0, 2.0, &[at(9)])).is_empty())
        .count();
    assert!(reported <= 1, "stopped: {reported}");
    // Leaves (vanishes): the frame it leaves is motion, its ghost is not.
    assert!(!run(&mut d, &frame(&mut rng, 1.0, 0.0, 2.0, &[])).is_empty());
    let reported = (0..30)
        .filter(|_| !run(&mut d, &frame(&mut rng, 1.0, 0.0, 2.0, &[])).is_empty())
        .count();
    assert!(reported <= 1, "ghost: {reported}");
}

#[test]
fn ir_switch_while_object_moves_leaves_no_lasting_ghost() {
    let mut d = Detector::new(Sensitivity::Medium);
    let mut rng = Rng(17);
    warm(&mut d, &mut rng, 2.0, 10);
    for i in 0..40 {
        let b = Box_ {
            x: 10 + 7 * i,
            y: 80,
            w: 24,
            h: 24,
            luma: 20.0,
        };
        let offset = if i >= 10 { 60.0 } else { 0.0 };
        let r = run(&mut d, &frame(&mut rng, 1.0, offset, 2.0, &[b]));
        if i == 10 {
            assert!(r.is_empty(), "{r:?}");
        }
        if i > 10 + SETTLE_FRAMES as usize {
            assert!(r.iter().any(|r| covers(r, &b)), "frame {i}: {r:?}");
        }
        if i >= 10 + SETTLE_FRAMES as usize + 6 {
            assert_eq!(r.len(), 1, "frame {i}: {r:?}");
            assert!(r[0].w < 2.0 * 24.0 / W as f32, "frame {i}: {r:?}");
        }
    }
}

#[test]
fn large_scene_change_is_lighting_not_motion() {
    // Half the image changes in different directions at once (not a global gain/offset).
    let mut d = Detector::new(Sensitivity::High);
    let mut rng = Rng(8);
    warm(&mut d, &mut rng, 2.0, 10);
    let big = [
        Box_ {
            x: 0,
            y: 0,
            w: 200,
            h: 90,
            luma: 250.0,
        },
        Box_ {
            x: 100,
            y: 90,
            w: 220,
            h: 90,
            luma: 5.0,
        },
    ];
    let mut reported = 0;
    for _ in 0..10 {
        if !run(&mut d, &frame(&mut rng, 1.0, 0.0, 2.0, &big)).is_empty() {
            reported += 1;
        }
    }
    assert!(reported <= 1, "{reported}");
}

#[test]
fn speckle_noise_no_motion_low_medium() {
    for sensitivity in [Sensitivity::Low, Sensitivity::Medium] {
        let mut d = Detector::new(sensitivity);
        let mut rng = Rng(9);
        for i in 0..80 {
            let mut f = frame(&mut rng, 1.0, 0.0, 3.0, &[]);
            // 0.5% salt-and-pepper pixels, new every frame.
            for _ in 0..W * H / 200 {
                let p = (rng.next() % (W * H) as u64) as usize;
                f[p] = if rng.next() & 1 == 0 { 255 } else { 0 };
            }
            let r = run(&mut d, &f);
            assert!(
                r.is_empty(),
                "{sensitivity:?} frame {i}: {r:?} {:?}",
                d.stats()
            );
        }
    }
}

#[test]
fn heavy_sensor_noise_no_motion_but_box_found() {
    // Like ffmpeg noise=alls=20:allf=t: gaussian, sigma ~ 20/sqrt(3), new every frame.
    for sensitivity in [Sensitivity::Low, Sensitivity::Medium] {
        let mut d = Detector::new(sensitivity);
        let mut rng = Rng(10);
        for i in 0..80 {
            let r = run(&mut d, &frame(&mut rng, 1.0, 0.0, 11.5, &[]));
            assert!(
                r.is_empty(),
                "{sensitivity:?} frame {i}: {r:?} {:?}",
                d.stats()
            );
        }
        let b = Box_ {
            x: 150,
            y: 50,
            w: 40,
            h: 40,
            luma: 250.0,
        };
        let r = run(&mut d, &frame(&mut rng, 1.0, 0.0, 11.5, &[b]));
        assert!(
            r.iter().any(|r| covers(r, &b)),
            "{sensitivity:?}: {r:?} {:?}",
            d.stats()
        );
    }
}

#[test]
fn small_object_depends_on_sensitivity() {
    // 6x6 pixels (8x8 = 0.11% of the frame after the blur spreads it): above high's minimum area,
    // below medium's and low's.
    for (sensitivity, expected) in [
        (Sensitivity::Low, false),
        (Sensitivity::Medium, false),
        (Sensitivity::High, true),
    ] {
        let mut d = Detector::new(sensitivity);
        let mut rng = Rng(11);
        warm(&mut d, &mut rng, 2.0, 10);
        let b = Box_ {
            x: 200,
            y: 30,
            w: 6,
            h: 6,
            luma: 250.0,
        };
        let r = run(&mut d, &frame(&mut rng, 1.0, 0.0, 2.0, &[b]));
        assert_eq!(!r.is_empty(), expected, "{sensitivity:?}: {r:?}");
    }
}

#[test]
fn faint_object_depends_on_sensitivity() {
    // A large object only 20 levels brighter than the scene behind it.
    for (sensitivity, expected) in [
        (Sensitivity::Low, false),
        (Sensitivity::Medium, false),
        (Sensitivity::High, true),
    ] {
        let mut d = Detector::new(sensitivity);
        let mut rng = Rng(12);
        warm(&mut d, &mut rng, 1.0, 10);
        let mut f = frame(&mut rng, 1.0, 0.0, 1.0, &[]);
        for y in 60..120 {
            for x in 100..160 {
                f[y * W + x] = f[y * W + x].saturating_add(20);
            }
        }
        let r = run(&mut d, &f);
        assert_eq!(
            !r.is_empty(),
            expected,
            "{sensitivity:?}: {r:?} {:?}",
            d.stats()
        );
    }
}

#[test]
fn stride_and_size_changes() {
    let mut d = Detector::new(Sensitivity::Medium);
    let mut rng = Rng(13);
    warm(&mut d, &mut rng, 0.0, 10);
    // Padded rows: stride 336.
    let b = Box_ {
        x: 100,
        y: 100,
        w: 30,
        h: 30,
        luma: 250.0,
    };
    let f = frame(&mut rng, 1.0, 0.0, 0.0, &[b]);
    let mut padded = vec![7u8; 336 * H];
    for y in 0..H {
        padded[y * 336..y * 336 + W].copy_from_slice(&f[y * W..(y + 1) * W]);
    }
    let r = d.process(W as u32, H as u32, 336, &padded).to_vec();
    assert!(r.iter().any(|r| covers(r, &b)), "{r:?}");
    // A new size starts a new warm-up; bad input reports nothing.
    assert!(d.process(160, 90, 160, &vec![200u8; 160 * 90]).is_empty());
    assert_eq!(d.stats().phase, Phase::WarmUp);
    assert!(d.process(160, 90, 160, &[0u8; 100]).is_empty());
    assert!(d.process(0, 0, 0, &[]).is_empty());
}

#[test]
fn output_is_normalised() {
    let mut d = Detector::new(Sensitivity::High);
    let mut rng = Rng(14);
    warm(&mut d, &mut rng, 0.0, 10);
    // A box in the bottom-right corner, touching the edges.
    let b = Box_ {
        x: 280,
        y: 140,
        w: 40,
        h: 40,
        luma: 250.0,
    };
    let r = run(&mut d, &frame(&mut rng, 1.0, 0.0, 0.0, &[b]));
    assert_eq!(r.len(), 1, "{r:?}");
    let r = r[0];
    assert!(
        (r.l - 280.0 / 320.0).abs() < 0.01 && (r.t - 140.0 / 180.0).abs() < 0.01,
        "{r:?}"
    );
    assert!(
        (r.l + r.w - 1.0).abs() < 1e-6 && (r.t + r.h - 1.0).abs() < 1e-6,
        "{r:?}"
    );
}

/// `cargo test --release -p motion-detector -- --ignored --nocapture`
#[test]
#[ignore]
fn timing() {
    let mut d = Detector::new(Sensitivity::Medium);
    let mut rng = Rng(15);
    let frames: Vec<Vec<u8>> = (0..50)
        .map(|i| {
            frame(
                &mut rng,
                1.0,
                0.0,
                5.0,
                &[Box_ {
                    x: 10 + 5 * i,
                    y: 60,
                    w: 30,
                    h: 40,
                    luma: 240.0,
                }],
            )
        })
        .collect();
    let t = std::time::Instant::now();
    for _ in 0..10 {
        for f in &frames {
            run(&mut d, f);
        }
    }
    println!("{:?} per 320x180 frame", t.elapsed() / 500);
}

/// Runs raw 8-bit gray frames through the detector and prints what it reports, e.g.
/// `ffmpeg -i clip.mp4 -vf fps=5,scale=320:180,format=gray -f rawvideo /tmp/clip.gray`, then
/// `MOTION_RAW=/tmp/clip.gray MOTION_SIZE=320x180 MOTION_SENSITIVITY=medium cargo test -p
/// motion-detector raw_clip -- --ignored --nocapture`.
#[test]
#[ignore]
fn raw_clip() {
    let Ok(path) = std::env::var("MOTION_RAW") else {
        return;
    };
    let size = std::env::var("MOTION_SIZE").unwrap_or_else(|_| "320x180".into());
    let (w, h) = size.split_once('x').expect("WxH");
    let (w, h): (usize, usize) = (w.parse().unwrap(), h.parse().unwrap());
    let sensitivity = std::env::var("MOTION_SENSITIVITY").unwrap_or_else(|_| "medium".into());
    let mut d = Detector::new(Sensitivity::parse(&sensitivity).expect("sensitivity"));
    let data = std::fs::read(path).expect("read");
    for (i, f) in data.chunks_exact(w * h).enumerate() {
        let r = d.process(w as u32, h as u32, w as u32, f).to_vec();
        let s = d.stats();
        let boxes: Vec<String> = r
            .iter()
            .map(|r| format!("({:.2},{:.2} {:.2}x{:.2})", r.l, r.t, r.w, r.h))
            .collect();
        println!(
            "{i:4} {:?} thr {:.1} sigma {:.2} shift {:+.1} gain {:.3} changed {:.4} {}",
            s.phase,
            s.threshold,
            s.noise_sigma,
            s.shift,
            s.gain,
            s.changed_fraction,
            boxes.join(" ")
        );
    }
}
