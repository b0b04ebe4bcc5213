//! `argusctl kinds`: the event registry compiled into this build.
use super::{Format, Out};
use anyhow::Result;

pub fn list(format: Format) -> Result<()> {
    let reg = crate::registry::builtin().map_err(anyhow::Error::msg)?;
    let mut out = Out::default();
    for (kind, def) in reg.kinds() {
        match format {
            Format::Json => out.json(&serde_json::json!({"kind": kind, "family": def.family, "description": def.description, "schema": def.schema}).to_string()),
            Format::Text => {
                let required: Vec<&str> = def.schema["required"].as_array().map(|a| a.iter().filter_map(|v| v.as_str()).collect()).unwrap_or_default();
                out.line(&format!("{kind:<28} requires [{}]  {}", required.join(", "), def.description));
            }
        }
    }
    if format == Format::Text {
        out.line(&format!(
            "(and any kind under `{}`, the extension namespace)",
            crate::registry::EXTENSION_NAMESPACE
        ));
    }
    out.flush();
    Ok(())
}
