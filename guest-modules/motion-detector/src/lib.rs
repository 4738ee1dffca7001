//! Vigil's default motion detector (AVA's MotionDetectionProcessor) as a `frame-filter`
//! component. The algorithm lives in [`detector`] and the node properties in [`config`], both
//! plain Rust with native unit tests; the WIT glue is compiled for wasm only.

pub mod config;
pub mod detector;

#[cfg(target_arch = "wasm32")]
#[allow(clippy::too_many_arguments)] // in the generated bindings
mod component {
    wit_bindgen::generate!({ world: "frame-filter", path: "../../wit" });

    use std::sync::Mutex;

    use crate::config::Settings;
    use crate::detector::Detector;
    use vigil::filter::host::{Level, log};
    use vigil::filter::types::Rect;

    struct State {
        detector: Detector,
        output_region: bool,
    }

    /// The component is single-threaded; the mutex only makes the static safe to reach.
    static STATE: Mutex<Option<State>> = Mutex::new(None);

    struct MotionDetector;

    impl Guest for MotionDetector {
        fn init(config: Config) -> Result<FrameRequest, String> {
            let settings = Settings::parse(&config)?;
            let p = settings.sensitivity.params();
            log(
                Level::Info,
                &format!(
                    "motion-detector: sensitivity={} threshold={} noiseFactor={} minArea={}% \
                     frameWidth={} outputMotionRegion={}",
                    settings.sensitivity.name(),
                    p.threshold,
                    p.noise_factor,
                    p.min_area * 100.0,
                    settings.frame_width,
                    settings.output_region,
                ),
            );
            let state = State {
                detector: Detector::new(settings.sensitivity),
                output_region: settings.output_region,
            };
            *STATE.lock().unwrap_or_else(|e| e.into_inner()) = Some(state);
            Ok(FrameRequest {
                width: settings.frame_width,
                rgb: false,
            })
        }

        fn process_frame(frame: Frame) -> Vec<Inference> {
            let mut guard = STATE.lock().unwrap_or_else(|e| e.into_inner());
            // A host that skipped `init` gets the defaults.
            let state = guard.get_or_insert_with(|| State {
                detector: Detector::new(Settings::default().sensitivity),
                output_region: Settings::default().output_region,
            });
            let regions =
                state
                    .detector
                    .process(frame.width, frame.height, frame.stride, &frame.luma);
            if regions.is_empty() {
                Vec::new()
            } else if !state.output_region {
                vec![Inference::Motion(None)]
            } else {
                regions
                    .iter()
                    .map(|r| {
                        Inference::Motion(Some(Rect {
                            l: r.l,
                            t: r.t,
                            w: r.w,
                            h: r.h,
                        }))
                    })
                    .collect()
            }
        }
    }

    export!(MotionDetector);
}
