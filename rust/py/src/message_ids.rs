//! `MessageIds`: the provider ids of delivered notifications, packed for a `BulkReport`.
//!
//! A million delivered notifications held as Python strings cost ~85 MB of `apns-id`s alone;
//! here an APNs UUID is 16 bytes plus a 4-byte index, and an FCM message name its bytes after
//! the prefix it shares with the first name seen (`projects/<p>/messages/`) plus 16 bytes.
//! Strings are made only when read, a slice at a time.

use pyo3::prelude::*;
use pyo3::types::PyList;

/// One lane of UUIDs, all in one letter case, so each reads back exactly as received.
#[derive(Default)]
struct UuidLane {
    at: Vec<u32>,
    packed: Vec<[u8; 16]>,
}

#[pyclass(module = "pushwire._core")]
#[derive(Default)]
pub struct MessageIds {
    lower: UuidLane,
    upper: UuidLane,
    /// Index and whether the shared prefix was cut off, per name.
    named_at: Vec<(u32, bool)>,
    named: Vec<u8>,
    named_ends: Vec<usize>,
    prefix: Option<String>,
}

#[pymethods]
impl MessageIds {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// Record `message_id` for the notification at `index`.
    fn add(&mut self, index: u32, message_id: &str) {
        match parse_uuid(message_id) {
            Some((packed, Case::Lower)) => {
                self.lower.at.push(index);
                self.lower.packed.push(packed);
            }
            Some((packed, Case::Upper)) => {
                self.upper.at.push(index);
                self.upper.packed.push(packed);
            }
            None => self.add_named(index, message_id),
        }
    }

    fn __len__(&self) -> usize {
        self.lower.at.len() + self.upper.at.len() + self.named_at.len()
    }

    /// Entries `start .. start + count` (fewer at the end) as `(index, message id)` tuples.
    fn slice<'py>(
        &self,
        py: Python<'py>,
        start: usize,
        count: usize,
    ) -> PyResult<Bound<'py, PyList>> {
        let end = start.saturating_add(count).min(self.__len__());
        let list = PyList::empty(py);
        for position in start..end {
            list.append(self.entry(position))?;
        }
        Ok(list)
    }

    /// Bytes held (for memory accounting).
    #[getter]
    fn nbytes(&self) -> usize {
        let uuids = (self.lower.at.len() + self.upper.at.len()) * (4 + 16);
        uuids + self.named_at.len() * (std::mem::size_of::<(u32, bool)>() + 8) + self.named.len()
    }
}

impl MessageIds {
    fn add_named(&mut self, index: u32, message_id: &str) {
        let prefix = self.prefix.get_or_insert_with(|| {
            let cut = message_id.rfind('/').map_or(0, |slash| slash + 1);
            message_id[..cut].to_owned()
        });
        let (cut, text) = match message_id.strip_prefix(prefix.as_str()) {
            Some(rest) if !prefix.is_empty() => (true, rest),
            _ => (false, message_id),
        };
        self.named_at.push((index, cut));
        self.named.extend_from_slice(text.as_bytes());
        self.named_ends.push(self.named.len());
    }

    /// The entry at `position`: the lower-case UUIDs first, then the upper-case, then names.
    fn entry(&self, position: usize) -> (u32, String) {
        let mut position = position;
        for (lane, case) in [(&self.lower, Case::Lower), (&self.upper, Case::Upper)] {
            if position < lane.at.len() {
                return (lane.at[position], format_uuid(&lane.packed[position], case));
            }
            position -= lane.at.len();
        }
        let (index, cut) = self.named_at[position];
        let start = if position == 0 {
            0
        } else {
            self.named_ends[position - 1]
        };
        // Stored from a &str, so the bytes are UTF-8.
        let text = String::from_utf8_lossy(&self.named[start..self.named_ends[position]]);
        let prefix = if cut { self.prefix.as_deref() } else { None };
        (index, format!("{}{text}", prefix.unwrap_or("")))
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Case {
    Lower,
    Upper,
}

/// A canonical 8-4-4-4-12 UUID in one letter case (digits only count as lower), or None.
fn parse_uuid(text: &str) -> Option<([u8; 16], Case)> {
    let bytes = text.as_bytes();
    if bytes.len() != 36 {
        return None;
    }
    let mut packed = [0u8; 16];
    let mut nibbles = 0;
    let (mut lower, mut upper) = (false, false);
    for (i, &c) in bytes.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if c != b'-' {
                return None;
            }
            continue;
        }
        let value = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => {
                lower = true;
                c - b'a' + 10
            }
            b'A'..=b'F' => {
                upper = true;
                c - b'A' + 10
            }
            _ => return None,
        };
        packed[nibbles / 2] |= if nibbles % 2 == 0 { value << 4 } else { value };
        nibbles += 1;
    }
    match (lower, upper) {
        (_, false) => Some((packed, Case::Lower)),
        (false, true) => Some((packed, Case::Upper)),
        (true, true) => None,
    }
}

fn format_uuid(packed: &[u8; 16], case: Case) -> String {
    let digits: &[u8; 16] = match case {
        Case::Lower => b"0123456789abcdef",
        Case::Upper => b"0123456789ABCDEF",
    };
    let mut text = String::with_capacity(36);
    for (i, byte) in packed.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            text.push('-');
        }
        text.push(char::from(digits[usize::from(byte >> 4)]));
        text.push(char::from(digits[usize::from(byte & 0x0f)]));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_read_back_exactly_in_their_case() {
        let mut ids = MessageIds::new();
        ids.add(7, "eabeae54-14a8-11e5-b60b-1697f925ec7b");
        ids.add(3, "EABEAE54-14A8-11E5-B60B-1697F925EC7B");
        ids.add(9, "12345678-1234-1234-1234-123456789012");
        ids.add(1, "Eabeae54-14a8-11e5-b60b-1697f925ec7b"); // mixed case: kept as text
        assert_eq!(ids.__len__(), 4);
        assert_eq!(
            ids.entry(0),
            (7, "eabeae54-14a8-11e5-b60b-1697f925ec7b".to_owned())
        );
        assert_eq!(
            ids.entry(1),
            (9, "12345678-1234-1234-1234-123456789012".to_owned())
        );
        assert_eq!(
            ids.entry(2),
            (3, "EABEAE54-14A8-11E5-B60B-1697F925EC7B".to_owned())
        );
        assert_eq!(
            ids.entry(3),
            (1, "Eabeae54-14a8-11e5-b60b-1697f925ec7b".to_owned())
        );
    }

    #[test]
    fn names_share_the_first_prefix_and_others_are_kept_whole() {
        let mut ids = MessageIds::new();
        ids.add(0, "projects/p/messages/0:1");
        ids.add(1, "projects/p/messages/0:2");
        ids.add(2, "projects/other/messages/0:3");
        ids.add(3, "not a uuid");
        let read: Vec<_> = (0..4).map(|n| ids.entry(n)).collect();
        assert_eq!(
            read,
            [
                (0, "projects/p/messages/0:1".to_owned()),
                (1, "projects/p/messages/0:2".to_owned()),
                (2, "projects/other/messages/0:3".to_owned()),
                (3, "not a uuid".to_owned()),
            ]
        );
        assert_eq!(ids.named, b"0:10:2projects/other/messages/0:3not a uuid");
    }

    #[test]
    fn near_uuids_are_not_packed() {
        for text in [
            "eabeae54-14a8-11e5-b60b-1697f925ec7",
            "eabeae54-14a8-11e5-b60b-1697f925ec7g",
            "eabeae5414a8-11e5-b60b-1697f925ec7b0",
            "eabeae54 14a8-11e5-b60b-1697f925ec7b",
        ] {
            assert_eq!(parse_uuid(text), None, "{text}");
        }
    }
}
