//! An in-memory FUSE filesystem with a power switch.
//!
//! Every file has two contents: what was written (served to readers) and
//! what is *durable* (what it held at its last `fsync`/`fdatasync`). A
//! simulated power cut ([`PowerSwitch::cut`]) drops every write that was
//! not fsynced: each file goes back to its durable content, as a disk
//! without a battery-backed cache may do when the power goes.
//!
//! Namespace operations (create, rename, unlink, mkdir) are durable at
//! once, as on a journaling filesystem that orders metadata before the
//! next sync; only file *data* and *length* are volatile. `flush` (called
//! on every `close`) and `sync_file_range` are not syncs, as on Linux.
//! Files are opened with `FOPEN_DIRECT_IO` and attributes are never cached,
//! so the kernel keeps no copy that could outlive a cut.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    FileAttr, FileType, Filesystem, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyWrite, Request, TimeOrNow,
};

const TTL: Duration = Duration::ZERO;
const ROOT: u64 = fuser::FUSE_ROOT_ID;

/// One file's contents.
#[derive(Debug, Default)]
struct Contents {
    /// What readers see.
    data: Vec<u8>,
    /// What survives a power cut.
    durable: Vec<u8>,
    /// Bytes of `data` written since the last sync, as one range.
    dirty: Option<(usize, usize)>,
    /// True when the length changed since the last sync.
    resized: bool,
}

impl Contents {
    fn touch(&mut self, from: usize, to: usize) {
        self.dirty = Some(match self.dirty {
            Some((a, b)) => (a.min(from), b.max(to)),
            None => (from, to),
        });
    }

    fn write(&mut self, offset: usize, bytes: &[u8]) {
        let end = offset + bytes.len();
        if end > self.data.len() {
            self.data.resize(end, 0);
            self.resized = true;
        }
        self.data[offset..end].copy_from_slice(bytes);
        self.touch(offset, end);
    }

    fn set_len(&mut self, len: usize) {
        if len != self.data.len() {
            self.data.resize(len, 0);
            self.resized = true;
        }
    }

    /// `fsync`: what was written becomes durable.
    fn sync(&mut self) {
        if self.resized {
            self.durable.resize(self.data.len(), 0);
        }
        if let Some((from, to)) = self.dirty.take() {
            let to = to.min(self.data.len());
            if from < to {
                self.durable[from..to].copy_from_slice(&self.data[from..to]);
            }
        }
        self.resized = false;
    }

    /// The power goes: what was not synced is lost.
    fn cut(&mut self) {
        if self.resized || self.dirty.is_some() {
            self.data.clone_from(&self.durable);
        }
        self.dirty = None;
        self.resized = false;
    }
}

#[derive(Debug)]
enum Kind {
    Dir(BTreeMap<OsString, u64>),
    File(Contents),
}

#[derive(Debug)]
struct Node {
    kind: Kind,
    parent: u64,
    mode: u16,
    mtime: SystemTime,
}

/// What the filesystem holds, and what its switch works on.
#[derive(Debug)]
struct State {
    nodes: HashMap<u64, Node>,
    next_ino: u64,
    /// Syncs served, for the test's own report.
    syncs: u64,
    /// Bytes dropped by the cuts so far.
    dropped_bytes: u64,
}

impl State {
    fn new() -> Self {
        let root = Node {
            kind: Kind::Dir(BTreeMap::new()),
            parent: ROOT,
            mode: 0o755,
            mtime: SystemTime::now(),
        };
        Self {
            nodes: HashMap::from([(ROOT, root)]),
            next_ino: ROOT + 1,
            syncs: 0,
            dropped_bytes: 0,
        }
    }

    fn attr(&self, ino: u64) -> Option<FileAttr> {
        let node = self.nodes.get(&ino)?;
        let (kind, size, nlink) = match &node.kind {
            Kind::Dir(_) => (FileType::Directory, 0, 2),
            Kind::File(c) => (FileType::RegularFile, c.data.len() as u64, 1),
        };
        Some(FileAttr {
            ino,
            size,
            blocks: size.div_ceil(512),
            atime: node.mtime,
            mtime: node.mtime,
            ctime: node.mtime,
            crtime: UNIX_EPOCH,
            kind,
            perm: node.mode,
            nlink,
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        })
    }

    fn children(&mut self, ino: u64) -> Option<&mut BTreeMap<OsString, u64>> {
        match &mut self.nodes.get_mut(&ino)?.kind {
            Kind::Dir(children) => Some(children),
            Kind::File(_) => None,
        }
    }

    fn contents(&mut self, ino: u64) -> Option<&mut Contents> {
        match &mut self.nodes.get_mut(&ino)?.kind {
            Kind::File(contents) => Some(contents),
            Kind::Dir(_) => None,
        }
    }

    fn child(&mut self, parent: u64, name: &OsStr) -> Option<u64> {
        self.children(parent)?.get(name).copied()
    }

    fn add(&mut self, parent: u64, name: &OsStr, kind: Kind, mode: u32) -> Result<u64, i32> {
        if self.child(parent, name).is_some() {
            return Err(libc::EEXIST);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        let node = Node {
            kind,
            parent,
            mode: (mode & 0o7777) as u16,
            mtime: SystemTime::now(),
        };
        self.nodes.insert(ino, node);
        self.children(parent)
            .ok_or(libc::ENOTDIR)?
            .insert(name.to_owned(), ino);
        Ok(ino)
    }

    /// Removes `ino` and, for a directory, everything under it.
    fn forget(&mut self, ino: u64) {
        if let Some(Node {
            kind: Kind::Dir(children),
            ..
        }) = self.nodes.remove(&ino)
        {
            for child in children.into_values() {
                self.forget(child);
            }
        }
    }

    fn cut(&mut self) {
        for node in self.nodes.values_mut() {
            if let Kind::File(contents) = &mut node.kind {
                let before = contents.data.len();
                if contents.dirty.is_some() || contents.resized {
                    let lost = contents
                        .dirty
                        .map_or(0, |(a, b)| b.saturating_sub(a))
                        .max(before.abs_diff(contents.durable.len()));
                    self.dropped_bytes += lost as u64;
                }
                contents.cut();
            }
        }
    }
}

/// The filesystem served over FUSE.
#[derive(Debug)]
pub(crate) struct PowerCutFs {
    state: Arc<Mutex<State>>,
}

/// Cuts the power of a [`PowerCutFs`] from outside it.
#[derive(Debug, Clone)]
pub struct PowerSwitch {
    state: Arc<Mutex<State>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl PowerSwitch {
    /// Drops every write that was not fsynced, in every file.
    pub fn cut(&self) {
        lock(&self.state).cut();
    }

    /// Syncs the filesystem has served so far.
    pub fn syncs(&self) -> u64 {
        lock(&self.state).syncs
    }

    /// Bytes of unsynced writes the cuts dropped so far.
    pub fn dropped_bytes(&self) -> u64 {
        lock(&self.state).dropped_bytes
    }
}

pub(crate) fn new() -> (PowerCutFs, PowerSwitch) {
    let state = Arc::new(Mutex::new(State::new()));
    (
        PowerCutFs {
            state: state.clone(),
        },
        PowerSwitch { state },
    )
}

fn offset_of(offset: i64) -> Result<usize, i32> {
    usize::try_from(offset).map_err(|_| libc::EINVAL)
}

impl Filesystem for PowerCutFs {
    fn lookup(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        let mut state = lock(&self.state);
        match state.child(parent, name).and_then(|ino| state.attr(ino)) {
            Some(attr) => reply.entry(&TTL, &attr, 0),
            None => reply.error(libc::ENOENT),
        }
    }

    fn getattr(&mut self, _req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        match lock(&self.state).attr(ino) {
            Some(attr) => reply.attr(&TTL, &attr),
            None => reply.error(libc::ENOENT),
        }
    }

    fn setattr(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<u64>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<u32>,
        reply: ReplyAttr,
    ) {
        let mut state = lock(&self.state);
        if let Some(size) = size {
            let Ok(size) = usize::try_from(size) else {
                return reply.error(libc::EFBIG);
            };
            match state.contents(ino) {
                Some(contents) => contents.set_len(size),
                None => return reply.error(libc::EISDIR),
            }
        }
        if let (Some(mode), Some(node)) = (mode, state.nodes.get_mut(&ino)) {
            node.mode = (mode & 0o7777) as u16;
        }
        match state.attr(ino) {
            Some(attr) => reply.attr(&TTL, &attr),
            None => reply.error(libc::ENOENT),
        }
    }

    fn mknod(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        let mut state = lock(&self.state);
        let kind = Kind::File(Contents::default());
        match state.add(parent, name, kind, mode) {
            Ok(ino) => match state.attr(ino) {
                Some(attr) => reply.entry(&TTL, &attr, 0),
                None => reply.error(libc::EIO),
            },
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let mut state = lock(&self.state);
        match state.add(parent, name, Kind::Dir(BTreeMap::new()), mode) {
            Ok(ino) => match state.attr(ino) {
                Some(attr) => reply.entry(&TTL, &attr, 0),
                None => reply.error(libc::EIO),
            },
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        let mut state = lock(&self.state);
        match state.children(parent).and_then(|c| c.remove(name)) {
            Some(ino) => {
                state.forget(ino);
                reply.ok();
            }
            None => reply.error(libc::ENOENT),
        }
    }

    fn rmdir(&mut self, req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        {
            let mut state = lock(&self.state);
            let Some(ino) = state.child(parent, name) else {
                return reply.error(libc::ENOENT);
            };
            if state.children(ino).is_some_and(|c| !c.is_empty()) {
                return reply.error(libc::ENOTEMPTY);
            }
        }
        self.unlink(req, parent, name, reply);
    }

    fn rename(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        _flags: u32,
        reply: ReplyEmpty,
    ) {
        let mut state = lock(&self.state);
        let Some(ino) = state.children(parent).and_then(|c| c.remove(name)) else {
            return reply.error(libc::ENOENT);
        };
        let replaced = match state.children(newparent) {
            Some(children) => children.insert(newname.to_owned(), ino),
            None => return reply.error(libc::ENOTDIR),
        };
        if let Some(old) = replaced.filter(|old| *old != ino) {
            state.forget(old);
        }
        if let Some(node) = state.nodes.get_mut(&ino) {
            node.parent = newparent;
        }
        reply.ok();
    }

    fn open(&mut self, _req: &Request<'_>, ino: u64, _flags: i32, reply: ReplyOpen) {
        if lock(&self.state).nodes.contains_key(&ino) {
            reply.opened(0, fuser::consts::FOPEN_DIRECT_IO);
        } else {
            reply.error(libc::ENOENT);
        }
    }

    fn create(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let mut state = lock(&self.state);
        let ino = match state.child(parent, name) {
            Some(ino) => ino,
            None => match state.add(parent, name, Kind::File(Contents::default()), mode) {
                Ok(ino) => ino,
                Err(e) => return reply.error(e),
            },
        };
        match state.attr(ino) {
            Some(attr) => reply.created(&TTL, &attr, 0, 0, fuser::consts::FOPEN_DIRECT_IO),
            None => reply.error(libc::EIO),
        }
    }

    fn read(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyData,
    ) {
        let mut state = lock(&self.state);
        let Ok(offset) = offset_of(offset) else {
            return reply.error(libc::EINVAL);
        };
        match state.contents(ino) {
            Some(contents) => {
                let from = offset.min(contents.data.len());
                let to = (from + size as usize).min(contents.data.len());
                reply.data(&contents.data[from..to]);
            }
            None => reply.error(libc::EISDIR),
        }
    }

    fn write(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        data: &[u8],
        _write_flags: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyWrite,
    ) {
        let mut state = lock(&self.state);
        let Ok(offset) = offset_of(offset) else {
            return reply.error(libc::EINVAL);
        };
        match state.contents(ino) {
            Some(contents) => {
                contents.write(offset, data);
                reply.written(u32::try_from(data.len()).unwrap_or(u32::MAX));
            }
            None => reply.error(libc::EISDIR),
        }
    }

    fn fsync(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let mut state = lock(&self.state);
        state.syncs += 1;
        if let Some(contents) = state.contents(ino) {
            contents.sync();
        }
        reply.ok();
    }

    fn fallocate(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        length: i64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let mut state = lock(&self.state);
        let (Ok(offset), Ok(length)) = (offset_of(offset), offset_of(length)) else {
            return reply.error(libc::EINVAL);
        };
        match state.contents(ino) {
            Some(contents) if mode == 0 => {
                if offset + length > contents.data.len() {
                    contents.set_len(offset + length);
                }
                reply.ok();
            }
            Some(_) => reply.error(libc::EOPNOTSUPP),
            None => reply.error(libc::EISDIR),
        }
    }

    fn opendir(&mut self, _req: &Request<'_>, ino: u64, _flags: i32, reply: ReplyOpen) {
        if lock(&self.state).children(ino).is_some() {
            reply.opened(0, 0);
        } else {
            reply.error(libc::ENOTDIR);
        }
    }

    fn readdir(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        mut reply: ReplyDirectory,
    ) {
        let mut state = lock(&self.state);
        let parent = state.nodes.get(&ino).map_or(ROOT, |n| n.parent);
        let Some(children) = state.children(ino) else {
            return reply.error(libc::ENOTDIR);
        };
        let mut entries = vec![
            (ino, FileType::Directory, OsString::from(".")),
            (parent, FileType::Directory, OsString::from("..")),
        ];
        let listed: Vec<(OsString, u64)> = children.iter().map(|(n, i)| (n.clone(), *i)).collect();
        for (name, child) in listed {
            let kind = match state.nodes.get(&child).map(|n| &n.kind) {
                Some(Kind::Dir(_)) => FileType::Directory,
                _ => FileType::RegularFile,
            };
            entries.push((child, kind, name));
        }
        let skip = usize::try_from(offset).unwrap_or(0);
        for (i, (child, kind, name)) in entries.into_iter().enumerate().skip(skip) {
            if reply.add(child, (i + 1) as i64, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn fsyncdir(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        _fh: u64,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        lock(&self.state).syncs += 1;
        reply.ok();
    }

    fn access(&mut self, _req: &Request<'_>, _ino: u64, _mask: i32, reply: ReplyEmpty) {
        reply.ok();
    }
}

#[cfg(test)]
mod tests {
    use super::Contents;

    #[test]
    fn a_cut_keeps_what_was_synced_and_drops_the_rest() {
        let mut file = Contents::default();
        file.write(0, b"hello");
        file.sync();
        file.write(3, b"p!!!");
        file.set_len(10);
        assert_eq!(&file.data[..7], b"help!!!");
        file.cut();
        assert_eq!(file.data, b"hello");
        file.write(5, b" world");
        file.sync();
        file.set_len(2);
        file.cut();
        assert_eq!(file.data, b"hello world");
    }
}
