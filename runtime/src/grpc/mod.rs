//! AVA's gRPC extension protocol (`runtime/proto`, `shared/grpc-contract.md`): the generated
//! contract, the connection to a server, the client sessions a GrpcExtension node keeps, the
//! shared-memory ring frames travel through, and the answers as AVA inference JSON.

pub mod channel;
pub mod contract;
pub mod inferences;
pub mod session;
mod session_worker;
pub mod shared_memory;
