/*!
Power-loss proof for the event log: a FUSE filesystem that keeps written
data in memory until `fsync`/`fdatasync` and drops everything unsynced at a
simulated power cut ([`fs`]), and the cut loop run on it ([`cuts`]).

The loop re-runs its own binary as the writer: the child opens a log on
the mounted filesystem and either appends from eight concurrent writers or
drives quotes through the command path from four clients, printing each
acknowledged append or command; the parent SIGKILLs it at a random moment,
cuts the power, reopens the log and checks that every acknowledged append
is present byte for byte, every acknowledged command sent again with its
id is answered with its first outcome, `verify` is clean and positions are
dense.

Mounting needs `/dev/fuse` and root (these machines have both); without
them the loop fails and says why.
*/

mod commands;
pub mod cuts;
mod fs;
pub mod harness;

pub use fs::PowerSwitch;

use std::path::{Path, PathBuf};

/// A mounted [`fs`] filesystem, unmounted when dropped.
pub struct Mount {
    // Dropped first: unmounts before the mount point goes.
    session: Option<fuser::BackgroundSession>,
    switch: PowerSwitch,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for Mount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mount").field("path", &self.path()).finish()
    }
}

impl Mount {
    /// Mounts a new, empty filesystem on a new temporary directory.
    ///
    /// # Errors
    /// The I/O error of the mount (no `/dev/fuse`, not root).
    pub fn new() -> std::io::Result<Self> {
        let dir = tempfile::tempdir()?;
        let (fs, switch) = fs::new();
        let options = [
            fuser::MountOption::FSName("powercut".into()),
            fuser::MountOption::NoAtime,
        ];
        let session = fuser::spawn_mount2(fs, dir.path(), &options)?;
        let mount = Self {
            session: Some(session),
            switch,
            dir,
        };
        mount.wait_mounted()?;
        Ok(mount)
    }

    /// Waits until the mount point is the FUSE filesystem.
    fn wait_mounted(&self) -> std::io::Result<()> {
        let target = self.path().to_string_lossy().into_owned();
        for _ in 0..500 {
            let mounts = std::fs::read_to_string("/proc/self/mounts")?;
            if mounts
                .lines()
                .any(|l| l.split(' ').nth(1) == Some(target.as_str()) && l.contains("fuse"))
            {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Err(std::io::Error::other(format!(
            "{target} is not mounted after 5 s"
        )))
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A directory under the mount point (created).
    ///
    /// # Errors
    /// The I/O error of creating it.
    pub fn subdir(&self, name: &str) -> std::io::Result<PathBuf> {
        let path = self.path().join(name);
        std::fs::create_dir_all(&path)?;
        Ok(path)
    }

    /// The filesystem's power switch.
    pub fn switch(&self) -> &PowerSwitch {
        &self.switch
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        drop(self.session.take());
    }
}
