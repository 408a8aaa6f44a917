//! [`Dedup`]: the same key in several merged inputs, by [`OnDuplicate`] policy.

use super::*;
use crate::error::{Error, ErrorKind, Result};
use crate::read::{Record, RecordKind};
use std::collections::{HashMap, HashSet};

/// What to do when a key appears twice in the same database (several inputs merged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnDuplicate {
    /// Fail, naming the key (Redis refuses such a file).
    #[default]
    Error,
    /// Keep the first occurrence.
    First,
}

/// Makes a merge of several inputs loadable: one copy of each key per database (policy for duplicates), each
/// AUX field once, each function library once (the same name with different code is an error), and no RESIZEDB
/// hints (they would be wrong for the merged data; they are optional).
pub struct Dedup<S> {
    next: S,
    active: bool,
    policy: OnDuplicate,
    keys: HashSet<(u64, Vec<u8>)>,
    aux: HashSet<Vec<u8>>,
    functions: HashMap<String, Vec<u8>>,
    duplicates: u64,
}

impl<S: RecordSink> Dedup<S> {
    /// A merge guard with the duplicate-key policy.
    pub fn new(next: S, policy: OnDuplicate) -> Self {
        Dedup {
            next,
            active: true,
            policy,
            keys: HashSet::new(),
            aux: HashSet::new(),
            functions: HashMap::new(),
            duplicates: 0,
        }
    }

    /// A guard that forwards everything unchanged (a single input needs no deduplication, and then no memory
    /// per key is spent).
    pub fn inactive(next: S) -> Self {
        let mut d = Self::new(next, OnDuplicate::Error);
        d.active = false;
        d
    }

    /// Number of duplicate keys skipped.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// The next sink.
    pub fn inner(&self) -> &S {
        &self.next
    }

    /// Consumes the guard, returning the next sink.
    pub fn into_inner(self) -> S {
        self.next
    }
}

impl<S: RecordSink> RecordSink for Dedup<S> {
    fn record(&mut self, rec: &Record<'_>) -> Result<()> {
        if !self.active {
            return self.next.record(rec);
        }
        match rec.kind {
            RecordKind::Entry(e) => {
                let key = e.key.decode()?.into_owned();
                if !self.keys.insert((e.db, key)) {
                    return match self.policy {
                        OnDuplicate::First => {
                            self.duplicates += 1;
                            Ok(())
                        }
                        OnDuplicate::Error => {
                            Err(Error::new(ErrorKind::Invalid("duplicate key in the merged inputs".into()), rec.offset)
                                .in_db(e.db)
                                .for_key(&e.key.decode()?))
                        }
                    };
                }
                self.next.record(rec)
            }
            RecordKind::Aux { key, .. } => {
                if self.aux.insert(key.decode()?.into_owned()) {
                    self.next.record(rec)
                } else {
                    Ok(())
                }
            }
            RecordKind::Function { code } => {
                let code = code.decode()?;
                let name = crate::read::function_name(&code).unwrap_or_default();
                match self.functions.get(&name) {
                    Some(prev) if prev.as_slice() == code.as_ref() => Ok(()),
                    Some(_) => Err(Error::new(
                        ErrorKind::Invalid(format!("function library {name:?} differs between inputs")),
                        rec.offset,
                    )),
                    None => {
                        self.functions.insert(name, code.into_owned());
                        self.next.record(rec)
                    }
                }
            }
            RecordKind::ResizeDb { .. } => Ok(()),
            _ => self.next.record(rec),
        }
    }

    fn finish(&mut self) -> Result<()> {
        self.next.finish()
    }
}
