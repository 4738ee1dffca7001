//! The HTTP API: trigger inputs and health (playback and the web page come with the video sink).

pub mod http;
