//! Copies of a server's data: base backups (`pg_basebackup`), clones at the
//! current point, and point-in-time clones from a base backup plus the
//! parent's WAL archive.
//!
//! Every instance archives completed WAL to `<uid>/wal_archive`. Its first
//! base backup is free: a template-born instance starts from the pristine
//! template cluster, so "the template + its archive" restores any point
//! since its creation. Clones get a real base backup in the background
//! right after they are created.

use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::error::{PgError, PgResult};
use super::server::{self, RecoveryTarget, ADMIN_ROLE};
use super::{BaseBackup, Fleet, InstanceMeta};
use crate::backend::BranchPoint;

/// `X/Y` → a comparable number.
pub fn parse_lsn(lsn: &str) -> Option<u64> {
    let (hi, lo) = lsn.trim().split_once('/')?;
    let hi = u64::from_str_radix(hi, 16).ok()?;
    let lo = u64::from_str_radix(lo, 16).ok()?;
    (hi <= u32::MAX as u64 && lo <= u32::MAX as u64).then_some((hi << 32) | lo)
}

impl Fleet {
    /// `pg_basebackup` of the server at `from` into `to` (as the server user).
    pub(super) async fn basebackup(&self, from: SocketAddrV4, to: &Path) -> PgResult<()> {
        let parent = to
            .parent()
            .ok_or_else(|| PgError::command("pg_basebackup", "target has no parent"))?;
        std::fs::create_dir_all(parent).map_err(PgError::io(parent))?;
        self.run_as.chown_tree(parent)?;
        let mut cmd = self.run_as.command(&self.bin.tool("pg_basebackup"), parent);
        cmd.arg("-D")
            .arg(to)
            .args(["-X", "stream", "-c", "fast", "--no-sync", "-w"]);
        cmd.args([
            "-h",
            &from.ip().to_string(),
            "-p",
            &from.port().to_string(),
            "-U",
            ADMIN_ROLE,
        ]);
        // The password goes by environment, never on a command line.
        cmd.env("PGPASSWORD", &self.admin_password);
        server::run(cmd, "pg_basebackup").await.map(|_| ())
    }

    /// The current WAL insert position of a running server.
    pub(super) async fn current_lsn(&self, addr: SocketAddrV4, uid: &str) -> PgResult<String> {
        let c = server::connect(addr, "postgres", &self.admin_password)
            .await
            .map_err(|e| PgError::sql(uid, &e))?;
        let row = c
            .query_one("SELECT pg_current_wal_lsn()::text", &[])
            .await
            .map_err(|e| PgError::sql(uid, &e))?;
        Ok(row.get(0))
    }

    /// Take a base backup of a running instance and record it.
    pub(super) async fn take_base_backup(&self, meta: &mut InstanceMeta) -> PgResult<()> {
        let n = meta.bases.len() + 1;
        let dir = self.instance_dir(&meta.uid).join(format!("base-{n}"));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(PgError::io(&dir))?;
        }
        self.basebackup(meta.addr, &dir).await?;
        let lsn = self.current_lsn(meta.addr, &meta.uid).await?;
        meta.bases.push(BaseBackup {
            dir,
            time: Utc::now(),
            lsn,
        });
        Ok(())
    }

    /// Make sure everything the parent committed so far is in its archive,
    /// with a commit after every earlier point (recovery stops at the first
    /// commit past its target, so one must exist).
    async fn flush_archive(&self, parent: &InstanceMeta) -> PgResult<String> {
        let uid = &parent.uid;
        let c = server::connect(parent.addr, "postgres", &self.admin_password)
            .await
            .map_err(|e| PgError::sql(uid, &e))?;
        c.batch_execute("SELECT txid_current()")
            .await
            .map_err(|e| PgError::sql(uid, &e))?;
        let row = c
            .query_one(
                "SELECT pg_walfile_name(pg_switch_wal()), pg_current_wal_lsn()::text",
                &[],
            )
            .await
            .map_err(|e| PgError::sql(uid, &e))?;
        let segment: String = row.get(0);
        let lsn: String = row.get(1);
        let archived = self.instance_dir(uid).join("wal_archive").join(&segment);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !archived.is_file() {
            if std::time::Instant::now() > deadline {
                return Err(PgError::command(
                    "archiving WAL",
                    format!(
                        "segment {segment} of {} was not archived within 60 s",
                        parent.name
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(lsn)
    }

    /// Fill `child_data` with the parent's data at `point`; returns the
    /// recovery the child must run on first start (None: none needed).
    pub(super) async fn prepare_clone(
        &self,
        parent: &InstanceMeta,
        point: &BranchPoint,
        child_data: &Path,
    ) -> PgResult<Option<server::Recovery>> {
        if parent.stopped {
            return Err(PgError::Invalid(format!(
                "parent instance {} is stopped; start it first",
                parent.name
            )));
        }
        let target = match point {
            BranchPoint::Now => {
                self.basebackup(parent.addr, child_data).await?;
                return Ok(None);
            }
            BranchPoint::Timestamp(t) => {
                let at: DateTime<Utc> = DateTime::parse_from_rfc3339(t)
                    .map_err(|e| {
                        PgError::Invalid(format!(
                            "branch_time {t:?} is not an RFC 3339 timestamp ({e})"
                        ))
                    })?
                    .with_timezone(&Utc);
                let now = Utc::now();
                if at > now {
                    return Err(PgError::Invalid(format!(
                        "branch_time {t} is in the future"
                    )));
                }
                // The forced commit must be strictly later than the target.
                if (now - at).num_milliseconds() < 2 {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                self.flush_archive(parent).await?;
                let base = self.base_for(parent, |b| b.time <= at)?;
                (
                    base,
                    RecoveryTarget::Time(at.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string()),
                )
            }
            BranchPoint::Lsn(l) => {
                let want = parse_lsn(l).ok_or_else(|| {
                    PgError::Invalid(format!("lsn {l:?} is not a WAL position like 0/2A156E"))
                })?;
                let current = self.current_lsn(parent.addr, &parent.uid).await?;
                if parse_lsn(&current).is_some_and(|c| want > c) {
                    return Err(PgError::Invalid(format!(
                        "lsn {l} is ahead of {}'s current WAL position {current}",
                        parent.name
                    )));
                }
                self.flush_archive(parent).await?;
                let base =
                    self.base_for(parent, |b| parse_lsn(&b.lsn).is_some_and(|b| b <= want))?;
                (base, RecoveryTarget::Lsn(l.trim().to_string()))
            }
        };
        let (base, target) = target;
        copy_tree(&base, child_data).await?;
        for stale in ["postmaster.pid", "postmaster.opts", "standby.signal"] {
            let _ = std::fs::remove_file(child_data.join(stale));
        }
        let signal = child_data.join("recovery.signal");
        std::fs::write(&signal, "").map_err(PgError::io(&signal))?;
        self.run_as.chown_tree(child_data)?;
        Ok(Some(server::Recovery {
            archive: self.instance_dir(&parent.uid).join("wal_archive"),
            target,
        }))
    }

    /// The latest base backup of `parent` satisfying `usable`.
    fn base_for(
        &self,
        parent: &InstanceMeta,
        usable: impl Fn(&BaseBackup) -> bool,
    ) -> PgResult<PathBuf> {
        parent
            .bases
            .iter()
            .filter(|b| usable(b) && b.dir.is_dir())
            .max_by_key(|b| b.time)
            .map(|b| b.dir.clone())
            .ok_or_else(|| {
                let earliest = parent.bases.iter().map(|b| b.time.to_rfc3339()).min();
                PgError::Invalid(match earliest {
                    Some(t) => format!(
                        "the branch point is before the earliest restorable point of {} ({t})",
                        parent.name
                    ),
                    None => format!(
                        "{} has no restorable point yet (its first base backup is still running)",
                        parent.name
                    ),
                })
            })
    }
}

/// `cp -a` (keeps owners and modes, which PostgreSQL checks).
pub async fn copy_tree(from: &Path, to: &Path) -> PgResult<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(PgError::io(parent))?;
    }
    let mut cmd = std::process::Command::new("cp");
    cmd.arg("-a").arg(from).arg(to);
    server::run(cmd, "copying a data directory")
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsns_compare_numerically() {
        assert_eq!(parse_lsn("0/2A156E"), Some(0x2A156E));
        assert!(parse_lsn("1/0") > parse_lsn("0/FFFFFFFF"));
        assert_eq!(parse_lsn("nope"), None);
        assert_eq!(parse_lsn("0/"), None);
    }
}
