//! `lakebundle init [TEMPLATE] [--output-dir DIR] [--config-file FILE]`: write a
//! new bundle from a built-in template (`crate::init::template`). On a TTY it
//! asks for the template and each value not given in the config file; without
//! one it takes the defaults and never waits for input.

use std::collections::BTreeMap;

use super::args::{GlobalArgs, InitArgs, OutputFormat};
use super::{output, Exit};
use crate::init::prompt;
use crate::init::template::{self, InitError, DEFAULT_TEMPLATE};

pub fn run(g: &GlobalArgs, a: &InitArgs) -> Exit {
    match init(g, a) {
        Ok(()) => Exit::Success,
        Err(e) => {
            output::error(e);
            Exit::Error
        }
    }
}

fn init(g: &GlobalArgs, a: &InitArgs) -> Result<(), InitError> {
    let interactive = output::stdin_is_tty();
    let stdin = std::io::stdin();
    let name = match &a.template {
        Some(n) => n.clone(),
        None if interactive => {
            let describe = |n: &str| {
                template::find(n)
                    .map(|t| t.schema.description)
                    .unwrap_or_default()
            };
            prompt::choose_template(&mut stdin.lock(), &mut std::io::stderr(), &describe)
        }
        None => DEFAULT_TEMPLATE.to_string(),
    };
    let tpl = template::find(&name)?;
    let preset = match &a.config_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| InitError::Io {
                path: path.clone(),
                source,
            })?;
            template::config_values(&tpl, path, &text)?
        }
        None => BTreeMap::new(),
    };
    let values = if interactive {
        eprintln!("{}", tpl.schema.description);
        prompt::ask(&tpl, preset, &mut stdin.lock(), &mut std::io::stderr())?
    } else {
        prompt::defaults(&tpl, preset)?
    };
    let files = template::render(&tpl, &values)?;
    let written = template::write(&a.output_dir, &files)?;
    let project = template::roots(&files)
        .into_iter()
        .next()
        .map(|r| a.output_dir.join(r))
        .unwrap_or_else(|| a.output_dir.clone());
    match g.output {
        OutputFormat::Json => output::print_json(&serde_json::json!({
            "template": tpl.name,
            "directory": project.display().to_string(),
            "values": values,
            "files": written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        })),
        _ => {
            println!(
                "Created {} from template `{}` ({} files).",
                project.display(),
                tpl.name,
                written.len()
            );
            println!(
                "Next: cd {} and follow README.md (validate, --local deploy, psql).",
                project.display()
            );
        }
    }
    Ok(())
}
