//! Commands that describe irctl itself: the JSON Schema, completions, the man page.

use clap::CommandFactory;

use super::context::Context;
use crate::cli::{Cli, Shell};
use irctl::playbook::model::RawPlaybook;

/// Prints the draft-07 JSON Schema of the playbook format.
pub fn schema(ctx: &Context) -> anyhow::Result<u8> {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let mut schema = generator.into_root_schema_for::<RawPlaybook>();
    schema.insert("title".into(), "irctl playbook, version 1".into());
    schema.insert(
        "$id".into(),
        "https://irctl.dev/schema/playbook-v1.json".into(),
    );
    ctx.ui.json(&serde_json::to_string_pretty(&schema)?)?;
    Ok(0)
}

/// Prints a completion script for `shell`.
pub fn completions(shell: Shell, ctx: &Context) -> anyhow::Result<u8> {
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "irctl", &mut buf);
    ctx.ui.out(&String::from_utf8_lossy(&buf))?;
    Ok(0)
}

/// Prints the man page.
pub fn man(ctx: &Context) -> anyhow::Result<u8> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut buf)?;
    ctx.ui.out(&String::from_utf8_lossy(&buf))?;
    Ok(0)
}
