//! The client subcommands (`vigil topology`, `vigil pipeline`, `vigil methods`): their
//! arguments, and how each becomes method calls and printed answers.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::client;
use crate::topology::{ParameterValue, parse_set_argument};

/// A client command against a running service.
#[derive(Debug, Args)]
pub struct ClientArgs<A: Subcommand> {
    /// What to do.
    #[command(subcommand)]
    pub action: A,
    /// The service, `http://HOST:PORT`.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        default_value = "http://127.0.0.1:7878"
    )]
    pub server: String,
    /// Trust the CA certificates in FILE (PEM) besides the system's, for an `https://` server.
    #[arg(long, global = true, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Print the service's answers as JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `vigil topology …`.
#[derive(Debug, Subcommand)]
pub enum TopologyAction {
    /// Set (create or update) the topology in FILE (`pipelineTopologySet`).
    Set {
        /// The topology JSON file.
        file: PathBuf,
    },
    /// List the topologies.
    List,
    /// Show one topology.
    Get {
        /// Its name.
        name: String,
    },
    /// Delete a topology no live pipeline uses.
    Delete {
        /// Its name.
        name: String,
    },
}

/// `vigil pipeline …`.
#[derive(Debug, Subcommand)]
pub enum PipelineAction {
    /// Set (create or update) a live pipeline (`livePipelineSet`).
    Set {
        /// Its name.
        name: String,
        /// The topology it binds.
        #[arg(long, value_name = "TOPOLOGY")]
        topology: String,
        /// A parameter value, NAME=VALUE (repeatable).
        #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_set_argument)]
        values: Vec<ParameterValue>,
        /// A description.
        #[arg(long)]
        description: Option<String>,
    },
    /// Start it.
    Activate {
        /// Its name.
        name: String,
    },
    /// Stop it (returns when its clips are closed and its uploads done).
    Deactivate {
        /// Its name.
        name: String,
    },
    /// List the live pipelines with their states.
    List,
    /// Show one live pipeline.
    Get {
        /// Its name.
        name: String,
    },
    /// Delete an inactive live pipeline.
    Delete {
        /// Its name.
        name: String,
    },
}

/// `vigil methods …`.
#[derive(Debug, Subcommand)]
pub enum MethodsAction {
    /// Run an AVA sample app's operations.json (opName/opParams, WaitForInput,
    /// pipelineTopologyUrl as a URL or a file path).
    Run {
        /// The operations file.
        file: PathBuf,
    },
}

/// Runs `body` with a client of `server` (trusting `ca_file` besides the system's roots); its
/// error is printed and exits 1.
pub fn client_command(
    server: &str,
    ca_file: Option<&std::path::Path>,
    body: impl FnOnce(&client::Client) -> anyhow::Result<()>,
) -> ExitCode {
    let trusted = match ca_file {
        Some(path) => crate::tls::trust_ca_file(path).map_err(anyhow::Error::from),
        None => Ok(()),
    };
    match trusted
        .and_then(|()| client::Client::new(server))
        .and_then(|c| body(&c))
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn show(json_output: bool, value: &serde_json::Value) {
    if json_output {
        println!("{value}");
    } else {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
    }
}

/// `vigil topology …`.
pub fn topology_command(
    c: &client::Client,
    args: &ClientArgs<TopologyAction>,
) -> anyhow::Result<()> {
    use serde_json::json;
    match &args.action {
        TopologyAction::Set { file } => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", file.display()))?;
            let doc: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{}: not JSON: {e}", file.display()))?;
            let (status, answer) = client::checked(c, "pipelineTopologySet", doc)?;
            if args.json {
                show(true, &answer);
            } else {
                let verb = if status == 201 { "created" } else { "updated" };
                println!(
                    "topology '{}' {verb}",
                    answer["name"].as_str().unwrap_or("")
                );
            }
        }
        TopologyAction::List => {
            let (_, answer) = client::checked(c, "pipelineTopologyList", json!({}))?;
            if args.json {
                show(true, &answer);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = answer["value"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| {
                    vec![
                        t["name"].as_str().unwrap_or("").to_string(),
                        t["systemData"]["lastModifiedAt"]
                            .as_str()
                            .unwrap_or("")
                            .to_string(),
                        t["properties"]["description"]
                            .as_str()
                            .unwrap_or("")
                            .to_string(),
                    ]
                })
                .collect();
            client::print_table(&["NAME", "MODIFIED", "DESCRIPTION"], &rows);
        }
        TopologyAction::Get { name } => {
            let (_, answer) = client::checked(c, "pipelineTopologyGet", json!({"name": name}))?;
            show(args.json, &answer);
        }
        TopologyAction::Delete { name } => {
            let (status, _) = client::checked(c, "pipelineTopologyDelete", json!({"name": name}))?;
            println!(
                "topology '{name}' {}",
                if status == 204 {
                    "did not exist"
                } else {
                    "deleted"
                }
            );
        }
    }
    Ok(())
}

/// `vigil pipeline …`.
pub fn pipeline_command(
    c: &client::Client,
    args: &ClientArgs<PipelineAction>,
) -> anyhow::Result<()> {
    use serde_json::json;
    match &args.action {
        PipelineAction::Set {
            name,
            topology,
            values,
            description,
        } => {
            let parameters: Vec<serde_json::Value> = values
                .iter()
                .map(|v| json!({"name": v.name, "value": v.value}))
                .collect();
            let mut properties = json!({"topologyName": topology, "parameters": parameters});
            if let Some(d) = description {
                properties["description"] = json!(d);
            }
            let (status, answer) = client::checked(
                c,
                "livePipelineSet",
                json!({"name": name, "properties": properties}),
            )?;
            if args.json {
                show(true, &answer);
            } else {
                let verb = if status == 201 { "created" } else { "updated" };
                println!("live pipeline '{name}' {verb}");
            }
        }
        PipelineAction::Activate { name } => {
            client::checked(c, "livePipelineActivate", json!({"name": name}))?;
            println!("live pipeline '{name}' active");
        }
        PipelineAction::Deactivate { name } => {
            client::checked(c, "livePipelineDeactivate", json!({"name": name}))?;
            println!("live pipeline '{name}' inactive");
        }
        PipelineAction::List => {
            let (_, answer) = client::checked(c, "livePipelineList", json!({}))?;
            if args.json {
                show(true, &answer);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = answer["value"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    vec![
                        p["name"].as_str().unwrap_or("").to_string(),
                        p["properties"]["state"].as_str().unwrap_or("").to_string(),
                        p["properties"]["topologyName"]
                            .as_str()
                            .unwrap_or("")
                            .to_string(),
                        p["status"]["restarts"].to_string(),
                        p["status"]["lastFault"]["detail"]
                            .as_str()
                            .unwrap_or("")
                            .to_string(),
                    ]
                })
                .collect();
            client::print_table(
                &["NAME", "STATE", "TOPOLOGY", "RESTARTS", "LAST FAULT"],
                &rows,
            );
        }
        PipelineAction::Get { name } => {
            let (_, answer) = client::checked(c, "livePipelineGet", json!({"name": name}))?;
            show(args.json, &answer);
        }
        PipelineAction::Delete { name } => {
            let (status, _) = client::checked(c, "livePipelineDelete", json!({"name": name}))?;
            println!(
                "live pipeline '{name}' {}",
                if status == 204 {
                    "did not exist"
                } else {
                    "deleted"
                }
            );
        }
    }
    Ok(())
}
