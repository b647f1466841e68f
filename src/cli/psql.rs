//! `lakebundle psql KEY [-- psql args]`: psql on an instance with a fresh
//! credential. The token goes to psql as `PGPASSWORD` in its environment,
//! never on its command line. With `--local` the local workspace (and the
//! instance's server) stays up until psql exits.

use super::args::{GlobalArgs, PsqlArgs};
use super::credential::Target;
use super::error::{CliError, ErrorClass};
use super::{context, Exit};

pub fn run(g: &GlobalArgs, a: &PsqlArgs) -> Result<Exit, CliError> {
    context::runtime()?.block_on(async {
        let target = Target::resolve(g, &a.key).await?;
        let result = match target.login(&a.database).await {
            Ok(login) => {
                let mut cmd = tokio::process::Command::new(
                    std::env::var_os("PSQL").unwrap_or_else(|| "psql".into()),
                );
                cmd.arg(login.conninfo())
                    .args(&a.psql_args)
                    .env("PGPASSWORD", &login.token);
                match cmd.status().await {
                    Ok(s) if s.success() => Ok(Exit::Success),
                    // psql said what went wrong itself.
                    Ok(_) => Ok(Exit::Error),
                    Err(e) => Err(
                        CliError::msg(ErrorClass::User, format!("cannot run psql: {e}"))
                            .with_help("install the PostgreSQL client, or set $PSQL to its path"),
                    ),
                }
            }
            Err(e) => Err(e),
        };
        target.close().await;
        result
    })
}
