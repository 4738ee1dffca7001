//! The HTTP API: trigger inputs, health and metrics (`http`), playback of the video archive and
//! the web page (`playback`).

pub mod http;
pub mod playback;
