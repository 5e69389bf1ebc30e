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

/// A guessed record start (`Windows::record_near`, where `split` cuts a file) is the first
/// record that begins at or after the guess, within the bytes scanned: here on a file of short
/// records, then records of 20,000 bytes (sixteen headers in a row span 320,000 bytes, past
/// the 64 KiB a first look reads, so that look cannot decide), then short ones again, at every
/// guess 997 bytes apart. The expected offsets are the file's own record starts, counted while
/// laying it out. The payloads are zeros and the stamps whole seconds, so that no offset inside
/// a record reads as a plausible header.
#[test]
fn a_guessed_start_is_the_first_record_after_the_guess() {
    let mut recs = Vec::new();
    for i in 0..600u32 {
        let len = match i {
            200..240 => 20_000,
            400 => 100_000,
            _ => 60 + (i as usize * 13) % 120,
        };
        recs.push((1_700_000_000 + i, 0, vec![0u8; len], len as u32));
    }
    let bytes = file(false, false, 65_535, &recs);
    let mut starts = Vec::new();
    let mut at = 24u64;
    for (_, _, data, _) in &recs {
        starts.push(at);
        at += 16 + data.len() as u64;
    }
    assert_eq!(at, bytes.len() as u64, "the layout counted");
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("near.pcap");
    std::fs::write(&path, &bytes).expect("written");
    let w = Windows::open(&path).expect("a plain legacy pcap file");
    let near = w.first_seconds().expect("a first record");
    let scan = 1 << 20;
    let mut checked = (0, 0);
    for guess in (24..bytes.len() as u64).step_by(997) {
        let expected = starts.iter().copied().find(|&s| s >= guess);
        let got = w.record_near(guess, scan, 16, near);
        assert_eq!(got, expected, "guess at byte {guess}");
        if expected.is_some_and(|s| (starts[200]..starts[240]).contains(&s)) {
            checked.0 += 1;
        } else {
            checked.1 += 1;
        }
    }
    // Guesses fell among the long records and among the short ones.
    assert!(checked.0 > 100 && checked.1 > 10, "{checked:?}");
    // A scan shorter than the distance to the next record finds none.
    let inside = starts[220] + 100;
    assert_eq!(w.record_near(inside, 1000, 16, near), None);
    assert_eq!(w.record_near(inside, 20_000, 16, near), Some(starts[221]));
}
