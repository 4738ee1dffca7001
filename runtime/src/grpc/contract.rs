//! The contract's messages and client, generated at build time from `runtime/proto/*.proto`
//! (package `microsoft.azure.media.live_video_analytics.extensibility.grpc.v1`, as AVA's).
#![allow(missing_docs, clippy::all, clippy::pedantic)]

tonic::include_proto!("microsoft.azure.media.live_video_analytics.extensibility.grpc.v1");
