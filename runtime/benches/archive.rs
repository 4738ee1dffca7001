//! `cargo bench --bench archive`: the archive catalog at scale, and playlist building.
//!
//! 1. A catalog with 100,000 segments over a month (one video, 30 s segments with gaps),
//!    then `availableMedia` at day precision over the month and at full precision over 25 h,
//!    and `/api/videos`-style merging of every range: milliseconds per query.
//! 2. The HLS playlist of 24 h at full precision (2,880 segments × 30 fragments).

use std::time::Instant;

use vigil::archive::available::{Precision, TimeRange, available_media, query_range};
use vigil::archive::catalog::{Catalog, FragmentRow, VideoRow};
use vigil::archive::hls::playlist;
use vigil::media::time::{MediaDuration, MediaTime};

fn median_ms(mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[3]
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("archive: run with `cargo bench --bench archive`");
        return;
    }
    let dir = std::env::temp_dir().join(format!("vigil-bench-archive-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let catalog = Catalog::open(&dir).expect("catalog");
    catalog.without_fsync().expect("bulk load");
    let month = MediaTime::from_secs(1_767_225_600); // 2026-01-01
    catalog
        .ensure_video(&VideoRow {
            name: "cam".into(),
            title: "cam".into(),
            description: String::new(),
            created: month,
            segment_length_ns: 30_000_000_000,
            retention_ns: None,
        })
        .expect("video");
    // 100,000 segments of 26 s in 30 s slots: a month of events with a 4 s gap between clips
    // (each segment its own clip), the first day fully fragmented (for the playlist).
    let start = Instant::now();
    let slot = MediaDuration::from_secs(30);
    let rows = 100_000i64;
    for i in 0..rows {
        let s = month + MediaDuration::from_nanos(slot.as_nanos() * i);
        let id = catalog
            .begin_segment("cam", i + 1, 0, &format!("videos/cam/{i}.mp4"), s, 700)
            .expect("segment");
        let fragments = if i < 2880 { 26 } else { 1 };
        for f in 0..fragments {
            let len = if fragments == 1 { 26 } else { 1 };
            let fs = s + MediaDuration::from_secs(f * len);
            catalog
                .add_fragment(
                    id,
                    &FragmentRow {
                        offset: 700 + f * 100_000,
                        len: 100_000,
                        start: fs,
                        end: fs + MediaDuration::from_secs(len),
                    },
                )
                .expect("fragment");
        }
        catalog.finish_segment(id, "0").expect("finish");
    }
    println!(
        "catalog: {rows} segments loaded in {:.1} s ({:.0} µs each, fsync off for the load)",
        start.elapsed().as_secs_f64(),
        start.elapsed().as_secs_f64() * 1e6 / rows as f64
    );
    let month_range =
        query_range(Precision::Day, Some("2026-01-01"), Some("2026-01-31")).expect("range");
    let mut n = 0;
    let day_ms = median_ms(|| {
        n = available_media(&catalog, "cam", Precision::Day, month_range)
            .expect("query")
            .len();
    });
    println!("availableMedia precision=day over a month: {day_ms:.1} ms ({n} days)");
    let full_range = query_range(
        Precision::Full,
        Some("2026-01-10T00:00:00Z"),
        Some("2026-01-11T01:00:00Z"),
    )
    .expect("range");
    let full_ms = median_ms(|| {
        n = available_media(&catalog, "cam", Precision::Full, full_range)
            .expect("query")
            .len();
    });
    println!("availableMedia precision=full over 25 h: {full_ms:.1} ms ({n} ranges)");
    let month_full = TimeRange {
        start: month,
        end: month + MediaDuration::from_secs(31 * 86_400),
    };
    let all_ms = median_ms(|| {
        n = available_media(&catalog, "cam", Precision::Full, month_full)
            .expect("query")
            .len();
    });
    println!("every range of the month (the web page's list): {all_ms:.1} ms ({n} ranges)");
    let day = TimeRange {
        start: month,
        end: month + MediaDuration::from_secs(86_400),
    };
    let mut fragments = 0;
    let playlist_ms = median_ms(|| {
        fragments = playlist(&catalog, "cam", day, |id| format!("media/{id}.mp4"))
            .expect("playlist")
            .fragments;
    });
    println!("HLS playlist of 24 h: {playlist_ms:.1} ms ({fragments} fragments)");
    let _ = std::fs::remove_dir_all(&dir);
}
