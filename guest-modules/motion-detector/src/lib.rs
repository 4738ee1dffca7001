//! Vigil's default motion detector (AVA's MotionDetectionProcessor) as a `frame-filter`
//! component, written with the `vigil-guest` SDK. The algorithm lives in [`detector`] and the
//! node properties in [`config`], both plain Rust with native unit tests.

pub mod config;
pub mod detector;

use vigil_guest::{Frame, FrameFilter, FrameRequest, Inference, Rect};

use crate::config::Settings;
use crate::detector::Detector;

/// One node's detector: its state lives in the instance.
pub struct MotionDetector {
    detector: Detector,
    output_region: bool,
    frame_width: u32,
}

impl FrameFilter for MotionDetector {
    fn new(settings: &vigil_guest::Settings) -> Result<Self, String> {
        let settings = Settings::parse(&settings.text_pairs())?;
        let p = settings.sensitivity.params();
        vigil_guest::log::info(&format!(
            "motion-detector: sensitivity={} threshold={} noiseFactor={} minArea={}% \
             frameWidth={} outputMotionRegion={}",
            settings.sensitivity.name(),
            p.threshold,
            p.noise_factor,
            p.min_area * 100.0,
            settings.frame_width,
            settings.output_region,
        ));
        Ok(Self {
            detector: Detector::new(settings.sensitivity),
            output_region: settings.output_region,
            frame_width: settings.frame_width,
        })
    }

    fn frame_request(&self) -> FrameRequest {
        FrameRequest {
            width: self.frame_width,
            luma: true,
            rgb: false,
        }
    }

    fn process_frame(&mut self, frame: &Frame) -> Vec<Inference> {
        let Some(luma) = &frame.luma else {
            return Vec::new();
        };
        let regions = self
            .detector
            .process(luma.width, luma.height, luma.stride, &luma.data);
        if regions.is_empty() {
            Vec::new()
        } else if !self.output_region {
            vec![Inference::motion(None)]
        } else {
            regions
                .iter()
                .map(|r| Inference::motion(Some(Rect::new(r.l, r.t, r.w, r.h))))
                .collect()
        }
    }
}

#[cfg(target_arch = "wasm32")]
vigil_guest::export_frame_filter!(MotionDetector);
