//! The HTTP API: who may call it (`auth`, wrong tokens throttled by `auth_throttle`), trigger
//! inputs, methods, health and metrics (`http`), playback of the video archive and the web page (`playback`).

pub mod auth;
pub mod auth_throttle;
pub mod http;
pub mod playback;
