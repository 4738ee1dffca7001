//! Home Assistant's MQTT discovery: the topics and payloads that make each live pipeline a device
//! in Home Assistant (HA's documented `<prefix>/<component>/<node>/<object>/config` messages,
//! retained), and the state topics Vigil publishes for them.
//!
//! Per pipeline: a binary sensor "Recording" (a clip is being recorded), a binary sensor "Motion"
//! for pipelines with a motion detector, a binary sensor per inference label once the label is
//! seen (for an object filter: what it kept), a camera showing the latest snapshot, and a switch
//! "Active" that activates and deactivates the pipeline. Every entity is available while the
//! service is connected (its MQTT last will says `offline`).

use serde_json::{Value, json};

/// What a pipeline's detection sensors stay on for after their last event, in seconds.
pub const OFF_DELAY_S: u64 = 10;

/// Names shared by every message: HA's discovery prefix and this service's node id.
#[derive(Clone, Debug)]
pub struct Discovery {
    /// HA's discovery prefix (`homeassistant` unless HA was configured otherwise).
    pub prefix: String,
    /// This service's node id (its MQTT client id, in the characters HA allows).
    pub node: String,
}

/// `[a-zA-Z0-9_-]` only, as HA wants node and object ids.
pub fn id_part(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A state topic of a pipeline: `vigil/<pipeline>/ha/<what>`.
pub fn state_topic(pipeline: &str, what: &str) -> String {
    format!("vigil/{pipeline}/ha/{what}")
}

/// The switch's command topic of a pipeline.
pub fn command_topic(pipeline: &str) -> String {
    state_topic(pipeline, "active/set")
}

/// What the service subscribes to for the switches.
pub const COMMAND_FILTER: &str = "vigil/+/ha/active/set";

/// The pipeline a switch command is for.
pub fn command_pipeline(topic: &str) -> Option<&str> {
    topic
        .strip_prefix("vigil/")?
        .strip_suffix("/ha/active/set")
        .filter(|p| !p.is_empty() && !p.contains('/'))
}

/// The label state topic of a pipeline.
pub fn label_topic(pipeline: &str, label: &str) -> String {
    state_topic(pipeline, &format!("label/{}", id_part(label)))
}

impl Discovery {
    /// The service's availability topic (`online` retained at connection, `offline` its will).
    pub fn availability_topic(&self) -> String {
        format!("vigil/{}/availability", self.node)
    }

    fn config_topic(&self, component: &str, pipeline: &str, object: &str) -> String {
        format!(
            "{}/{component}/{}/{}_{object}/config",
            self.prefix,
            self.node,
            id_part(pipeline)
        )
    }

    fn unique_id(&self, pipeline: &str, object: &str) -> String {
        format!("vigil_{}_{}_{object}", self.node, id_part(pipeline))
    }

    fn device(&self, pipeline: &str) -> Value {
        json!({
            "identifiers": [format!("vigil_{}_{}", self.node, id_part(pipeline))],
            "name": format!("Vigil {pipeline}"),
            "manufacturer": "Vigil",
            "model": "live pipeline",
            "sw_version": env!("CARGO_PKG_VERSION"),
        })
    }

    fn entity(&self, pipeline: &str, object: &str, name: &str) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        m.insert("name".into(), json!(name));
        m.insert("unique_id".into(), json!(self.unique_id(pipeline, object)));
        m.insert(
            "object_id".into(),
            json!(format!("vigil_{}_{object}", id_part(pipeline))),
        );
        m.insert(
            "availability_topic".into(),
            json!(self.availability_topic()),
        );
        m.insert("device".into(), self.device(pipeline));
        m
    }

    /// The discovery messages of a pipeline: (topic, payload), each to be retained.
    pub fn pipeline_configs(&self, pipeline: &str, motion: bool) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        let mut recording = self.entity(pipeline, "recording", "Recording");
        recording.insert(
            "state_topic".into(),
            json!(state_topic(pipeline, "recording")),
        );
        recording.insert("payload_on".into(), json!("ON"));
        recording.insert("payload_off".into(), json!("OFF"));
        recording.insert("device_class".into(), json!("running"));
        out.push((
            self.config_topic("binary_sensor", pipeline, "recording"),
            Value::Object(recording),
        ));
        if motion {
            let mut m = self.entity(pipeline, "motion", "Motion");
            m.insert("state_topic".into(), json!(state_topic(pipeline, "motion")));
            m.insert("payload_on".into(), json!("ON"));
            m.insert("payload_off".into(), json!("OFF"));
            m.insert("device_class".into(), json!("motion"));
            m.insert("off_delay".into(), json!(OFF_DELAY_S));
            out.push((
                self.config_topic("binary_sensor", pipeline, "motion"),
                Value::Object(m),
            ));
        }
        let mut camera = self.entity(pipeline, "snapshot", "Snapshot");
        camera.insert("topic".into(), json!(state_topic(pipeline, "snapshot")));
        out.push((
            self.config_topic("camera", pipeline, "snapshot"),
            Value::Object(camera),
        ));
        let mut switch = self.entity(pipeline, "active", "Active");
        switch.insert("state_topic".into(), json!(state_topic(pipeline, "active")));
        switch.insert("command_topic".into(), json!(command_topic(pipeline)));
        switch.insert("payload_on".into(), json!("ON"));
        switch.insert("payload_off".into(), json!("OFF"));
        switch.insert("state_on".into(), json!("ON"));
        switch.insert("state_off".into(), json!("OFF"));
        out.push((
            self.config_topic("switch", pipeline, "active"),
            Value::Object(switch),
        ));
        out
    }

    /// The config topics [`Self::pipeline_configs`] uses (an empty retained message on each
    /// removes the entity when the pipeline is deleted).
    pub fn pipeline_config_topics(&self, pipeline: &str) -> Vec<String> {
        vec![
            self.config_topic("binary_sensor", pipeline, "recording"),
            self.config_topic("binary_sensor", pipeline, "motion"),
            self.config_topic("camera", pipeline, "snapshot"),
            self.config_topic("switch", pipeline, "active"),
        ]
    }

    /// The discovery message of a binary sensor for inference label `label` of a pipeline.
    pub fn label_config(&self, pipeline: &str, label: &str) -> (String, Value) {
        let object = format!("label_{}", id_part(label));
        let mut m = self.entity(pipeline, &object, label);
        m.insert("state_topic".into(), json!(label_topic(pipeline, label)));
        m.insert("payload_on".into(), json!("ON"));
        m.insert("payload_off".into(), json!("OFF"));
        m.insert("device_class".into(), json!("occupancy"));
        m.insert("off_delay".into(), json!(OFF_DELAY_S));
        (
            self.config_topic("binary_sensor", pipeline, &object),
            Value::Object(m),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The configuration variables HA documents for MQTT discovery of each component
    /// (home-assistant.io/integrations/binary_sensor.mqtt, camera.mqtt, switch.mqtt; the
    /// device's from the MQTT discovery page), and those each needs.
    fn documented(component: &str) -> (Vec<&'static str>, &'static [&'static str]) {
        const COMMON: &[&str] = &[
            "availability",
            "availability_mode",
            "availability_template",
            "availability_topic",
            "device",
            "enabled_by_default",
            "encoding",
            "entity_category",
            "entity_picture",
            "icon",
            "json_attributes_template",
            "json_attributes_topic",
            "name",
            "object_id",
            "default_entity_id",
            "payload_available",
            "payload_not_available",
            "unique_id",
        ];
        let (own, required): (&[&str], &[&str]) = match component {
            "binary_sensor" => (
                &[
                    "device_class",
                    "expire_after",
                    "force_update",
                    "off_delay",
                    "payload_off",
                    "payload_on",
                    "qos",
                    "state_topic",
                    "value_template",
                ],
                &["state_topic"],
            ),
            "camera" => (&["image_encoding", "topic"], &["topic"]),
            "switch" => (
                &[
                    "command_template",
                    "command_topic",
                    "device_class",
                    "optimistic",
                    "payload_off",
                    "payload_on",
                    "qos",
                    "retain",
                    "state_off",
                    "state_on",
                    "state_topic",
                    "value_template",
                ],
                &["command_topic"],
            ),
            other => panic!("no schema for {other}"),
        };
        ([COMMON, own].concat(), required)
    }

    const DEVICE_KEYS: &[&str] = &[
        "configuration_url",
        "connections",
        "hw_version",
        "identifiers",
        "manufacturer",
        "model",
        "model_id",
        "name",
        "serial_number",
        "suggested_area",
        "sw_version",
        "via_device",
    ];

    fn check(topic: &str, payload: &Value) {
        let parts: Vec<&str> = topic.split('/').collect();
        assert_eq!(parts.len(), 5, "{topic}");
        assert_eq!(parts[0], "homeassistant");
        assert_eq!(parts[4], "config");
        for id in [parts[2], parts[3]] {
            assert!(
                id.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
                "{topic}: HA ids are [a-zA-Z0-9_-]"
            );
        }
        let (allowed, required) = documented(parts[1]);
        let map = payload.as_object().expect("an object");
        for key in map.keys() {
            assert!(
                allowed.contains(&key.as_str()),
                "{topic}: '{key}' is not documented"
            );
        }
        for key in required {
            assert!(map.contains_key(*key), "{topic}: '{key}' is required");
        }
        for key in map["device"].as_object().expect("device").keys() {
            assert!(
                DEVICE_KEYS.contains(&key.as_str()),
                "{topic}: device '{key}'"
            );
        }
        assert!(map["unique_id"].as_str().is_some_and(|u| !u.is_empty()));
    }

    #[test]
    fn discovery_payloads_use_only_what_home_assistant_documents() {
        let d = Discovery {
            prefix: "homeassistant".into(),
            node: id_part("vigil-host.lan-service"),
        };
        assert_eq!(d.node, "vigil-host_lan-service");
        let configs = d.pipeline_configs("front door", true);
        assert_eq!(configs.len(), 4);
        for (topic, payload) in &configs {
            check(topic, payload);
        }
        let (topic, payload) = d.label_config("front door", "delivery truck");
        check(&topic, &payload);
        assert_eq!(
            topic,
            "homeassistant/binary_sensor/vigil-host_lan-service/front_door_label_delivery_truck/config"
        );
        assert_eq!(
            payload["state_topic"],
            "vigil/front door/ha/label/delivery_truck"
        );
        // Without a motion detector, no motion sensor.
        assert_eq!(d.pipeline_configs("p", false).len(), 3);
        // The ids differ per pipeline and per entity.
        let ids: std::collections::HashSet<String> = configs
            .iter()
            .map(|(_, p)| p["unique_id"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(ids.len(), 4);
    }

    #[test]
    fn switch_commands_name_their_pipeline() {
        assert_eq!(command_pipeline("vigil/p1/ha/active/set"), Some("p1"));
        assert_eq!(command_pipeline("vigil//ha/active/set"), None);
        assert_eq!(command_pipeline("vigil/a/b/ha/active/set"), None);
        assert_eq!(command_pipeline("vigil/p1/inputs/x"), None);
    }
}
