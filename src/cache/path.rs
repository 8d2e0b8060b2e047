//! Paths in the cache file, stored losslessly: a path that is UTF-8 is a JSON string (as every
//! version of the file has had it); one that is not (a Unix file name in Latin-1, say) is its
//! bytes as a JSON array, since JSON strings hold only Unicode. serde's own `PathBuf` refuses
//! such a path, which made the whole file unwritable and every entry of the batch lost.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Repr {
    Text(String),
    Bytes(Vec<u8>),
}

fn to_repr(path: &std::path::Path) -> Repr {
    match path.to_str() {
        Some(text) => Repr::Text(text.to_owned()),
        None => Repr::Bytes(bytes_of(path)),
    }
}

#[cfg(unix)]
fn bytes_of(path: &std::path::Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str().as_bytes().to_vec()
}

/// Elsewhere a path is not bytes: kept lossily, so that it misses rather than breaks the file.
#[cfg(not(unix))]
fn bytes_of(path: &std::path::Path) -> Vec<u8> {
    path.to_string_lossy().into_owned().into_bytes()
}

fn from_repr(repr: Repr) -> PathBuf {
    match repr {
        Repr::Text(text) => PathBuf::from(text),
        Repr::Bytes(bytes) => path_of(bytes),
    }
}

#[cfg(unix)]
fn path_of(bytes: Vec<u8>) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(bytes))
}

#[cfg(not(unix))]
fn path_of(bytes: Vec<u8>) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(&bytes).into_owned())
}

pub(super) fn serialize<S: Serializer>(path: &std::path::Path, s: S) -> Result<S::Ok, S::Error> {
    to_repr(path).serialize(s)
}

pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
    Repr::deserialize(d).map(from_repr)
}

/// The same for an optional path.
pub(super) mod option {
    use std::path::PathBuf;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{Repr, from_repr, to_repr};

    pub(in crate::cache) fn serialize<S: Serializer>(
        path: &Option<PathBuf>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        path.as_deref().map(to_repr).serialize(s)
    }

    pub(in crate::cache) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<PathBuf>, D::Error> {
        Option::<Repr>::deserialize(d).map(|repr| repr.map(from_repr))
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::ffi::OsStringExt;
    use std::path::PathBuf;

    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Both {
        #[serde(with = "super")]
        path: PathBuf,
        #[serde(with = "super::option")]
        source: Option<PathBuf>,
    }

    #[test]
    fn any_unix_path_round_trips_and_utf8_ones_stay_strings() {
        let latin1 = PathBuf::from(std::ffi::OsString::from_vec(b"/tmp/caf\xe9.png".to_vec()));
        let both = Both {
            path: latin1.clone(),
            source: Some(latin1),
        };
        let json = serde_json::to_string(&both).expect("serialised");
        assert_eq!(
            serde_json::from_str::<Both>(&json).expect("read back"),
            both
        );
        let plain = Both {
            path: "/tmp/cat.png".into(),
            source: None,
        };
        let json = serde_json::to_string(&plain).expect("serialised");
        assert_eq!(json, r#"{"path":"/tmp/cat.png","source":null}"#);
        assert_eq!(serde_json::from_str::<Both>(&json).expect("read"), plain);
    }
}
