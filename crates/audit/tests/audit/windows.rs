//! Plain pcap files read in windows of whole records (`capture::Windows`, walked by hand) give
//! the frames, the record count and the problem that `pcap-parser`'s streaming reader gives
//! (`capture::read` over the same bytes), on files laid out here by hand after libpcap's
//! `pcap-savefile(5)`: both byte orders, micro- and nanosecond stamps, files cut at every
//! length, a record longer than the snap length allows, and windows from smaller than one
//! record to larger than the file.

use std::path::Path;

use portolan_audit::capture::{self, Frame, InputProblem, Windows};

/// A legacy pcap file: header (magic by byte order and precision, version 2.4, snap length
/// `snap`, Ethernet) and `records` as (seconds, fraction, captured bytes, length on the wire).
fn file(big: bool, nanos: bool, snap: u32, records: &[(u32, u32, Vec<u8>, u32)]) -> Vec<u8> {
    let w32 = |v: u32| {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let w16 = |v: u16| {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut f = Vec::new();
    f.extend(w32(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
    f.extend(w16(2));
    f.extend(w16(4));
    f.extend(w32(0));
    f.extend(w32(0));
    f.extend(w32(snap));
    f.extend(w32(1));
    for (sec, frac, data, orig) in records {
        f.extend(w32(*sec));
        f.extend(w32(*frac));
        f.extend(w32(data.len() as u32));
        f.extend(w32(*orig));
        f.extend(data);
    }
    f
}

/// Records of lengths 0 to 199 bytes (some cut below their wire length), each byte telling
/// its record.
fn records(n: usize) -> Vec<(u32, u32, Vec<u8>, u32)> {
    (0..n)
        .map(|i| {
            let len = (i * 37) % 200;
            let data: Vec<u8> = (0..len).map(|j| (i + j) as u8).collect();
            let orig = len as u32 + if i % 3 == 0 { 10 } else { 0 };
            (
                1_700_000_000 + i as u32,
                (i as u32 * 7919) % 1_000_000,
                data,
                orig,
            )
        })
        .collect()
}

type Seen = (Vec<(i64, u32, Vec<u8>, u32)>, u64, Option<InputProblem>);

fn streamed(bytes: &[u8]) -> Seen {
    let mut frames = Vec::new();
    let (n, p) = capture::read(bytes, |f: &Frame<'_>| {
        frames.push((f.ts, f.link, f.data.to_vec(), f.orig_len));
    });
    (frames, n, p)
}

fn windowed(path: &Path, window: usize) -> Seen {
    let w = Windows::open_with(path, window).expect("a plain legacy pcap file");
    let mut frames = Vec::new();
    let (n, p) = capture::read_windows(w, |f: &Frame<'_>| {
        frames.push((f.ts, f.link, f.data.to_vec(), f.orig_len));
    });
    (frames, n, p)
}

#[test]
fn windows_read_what_the_stream_reader_reads() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("c.pcap");
    let mut files = Vec::new();
    for big in [false, true] {
        for nanos in [false, true] {
            files.push(file(big, nanos, 65535, &records(60)));
        }
    }
    // A record longer than the snap length allows (libpcap's 262,144 at least): corrupt.
    let mut bad = records(20);
    bad[12].2 = vec![7; 300_000];
    files.push(file(false, false, 65535, &bad));
    let whole = file(false, false, 65535, &records(60));
    let mut checked = 0;
    for (k, bytes) in files.iter().enumerate() {
        std::fs::write(&path, bytes).expect("temporary file");
        let reference = streamed(bytes);
        for window in [16, 100, 250, 1_000, 4_096, 1 << 20] {
            assert_eq!(
                windowed(&path, window),
                reference,
                "file {k}, window {window}"
            );
            checked += 1;
        }
        if k < 4 {
            assert_eq!(reference.1, 60);
            assert!(reference.2.is_none());
            // The windows took every record themselves, whatever their size (none was left to
            // the stream reader, which would also give the right answer, only slower): a
            // record longer than the window grows it.
            for window in [16, 100, 250, 1_000, 4_096] {
                let mut w = Windows::open_with(&path, window).expect("a plain legacy pcap file");
                let mut taken = 0;
                while let Some(win) = w.next_window() {
                    taken += win.starts.len();
                }
                assert_eq!(taken, 60, "file {k}, window {window}");
            }
        } else {
            // The 12 records before the long one, and the problem at its offset.
            assert_eq!(reference.1, 12);
            let p = reference.2.as_ref().expect("a problem");
            let offset: usize = 24 + bad[..12].iter().map(|r| 16 + r.2.len()).sum::<usize>();
            assert_eq!(p.offset, offset as u64);
        }
    }
    // Cut at many lengths (every 13th byte, and every byte of the last two records): the
    // records before the cut, and the cut one told as the stream reader tells it.
    let last_two =
        whole.len() - 2 * 16 - records(60)[58..].iter().map(|r| r.2.len()).sum::<usize>();
    for cut in (24..whole.len()).filter(|c| c % 13 == 0 || *c >= last_two) {
        let bytes = &whole[..cut];
        std::fs::write(&path, bytes).expect("temporary file");
        let reference = streamed(bytes);
        for window in [40, 300] {
            assert_eq!(
                windowed(&path, window),
                reference,
                "cut at {cut}, window {window}"
            );
            checked += 1;
        }
    }
    assert!(checked > 1_000);
}
