//! `lakebundle psql KEY [-- psql args]`: psql on an instance with a fresh
//! credential. The token goes to psql as `PGPASSWORD` in its environment,
//! never on its command line. With `--local` the local workspace (and the
//! instance's server) stays up until psql exits.

use super::args::{GlobalArgs, PsqlArgs};
use super::credential::{block_on, Target};
use super::{output, Exit};

pub fn run(g: &GlobalArgs, a: &PsqlArgs) -> Exit {
    block_on(async {
        let target = match Target::resolve(g, &a.key).await {
            Ok(t) => t,
            Err(exit) => return exit,
        };
        let exit = match target.login(&a.database).await {
            Ok(login) => {
                let mut cmd = tokio::process::Command::new(
                    std::env::var_os("PSQL").unwrap_or_else(|| "psql".into()),
                );
                cmd.arg(login.conninfo())
                    .args(&a.psql_args)
                    .env("PGPASSWORD", &login.token);
                match cmd.status().await {
                    Ok(s) if s.success() => Exit::Success,
                    Ok(_) => Exit::Error,
                    Err(e) => {
                        output::error(format!(
                            "cannot run psql: {e} (install the PostgreSQL client, or set $PSQL)"
                        ));
                        Exit::Error
                    }
                }
            }
            Err(exit) => exit,
        };
        target.close().await;
        exit
    })
}
