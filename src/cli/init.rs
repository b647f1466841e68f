//! `lakebundle init [TEMPLATE] [--output-dir DIR] [--config-file FILE]`: write a
//! new bundle from a built-in template (`crate::init::template`). On a TTY it
//! asks for the template and each value not given in the config file; without
//! one it takes the defaults and never waits for input.

use std::collections::BTreeMap;

use super::args::{GlobalArgs, InitArgs, OutputFormat};
use super::error::{CliError, ErrorClass};
use super::{output, Exit};
use crate::init::prompt;
use crate::init::template::{self, InitError, DEFAULT_TEMPLATE};

pub fn run(g: &GlobalArgs, a: &InitArgs) -> Result<Exit, CliError> {
    let created = init(a).map_err(|e| CliError::diagnostic(ErrorClass::User, e))?;
    print_created(g, &created)?;
    Ok(Exit::Success)
}

/// What `init` wrote, for the report.
struct Created {
    template: &'static str,
    project: std::path::PathBuf,
    values: BTreeMap<String, String>,
    written: Vec<std::path::PathBuf>,
}

fn init(a: &InitArgs) -> Result<Created, InitError> {
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
    Ok(Created {
        template: tpl.name,
        project,
        values,
        written,
    })
}

fn print_created(g: &GlobalArgs, c: &Created) -> Result<(), CliError> {
    match g.output {
        OutputFormat::Json => output::print_json(&serde_json::json!({
            "template": c.template,
            "directory": c.project.display().to_string(),
            "values": c.values,
            "files": c.written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        })),
        _ => output::out(&format!(
            "Created {} from template `{}` ({} files).\n\
             Next: cd {} and follow README.md (validate, --local deploy, psql).\n",
            c.project.display(),
            c.template,
            c.written.len(),
            c.project.display()
        )),
    }
}
