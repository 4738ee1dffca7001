//! The HTTP API: who may call it (`auth`), trigger inputs, methods, health and metrics
//! (`http`), playback of the video archive and the web page (`playback`).

pub mod auth;
pub mod http;
pub mod playback;
