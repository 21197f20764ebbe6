//! XGT PLCs that answer NAK to everything, answer with another invoke ID, send a
//! truncated frame, stay silent or answer garbage: the inputs turn BAD with the cause
//! (LS's error code for a NAK) in the driver's status, and the scan never waits.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{layout, Rig};
use softplc_core::{Area, IecType, Quality};
use softplc_io::config::parse;
use softplc_io::xgt::codec::{Request, RequestFrame, Response, ResponseFrame};
use softplc_io::xgt::{Cpu, NakCode};
use softplc_io::XgtClient;

#[derive(Clone, Copy)]
enum Mode {
    CloseAtOnce,
    NakEverything,
    OtherInvoke,
    Truncated,
    Silent,
    Garbage,
}

/// The correct answer to a request frame, from a PLC whose memory is all zeros.
fn answer(req: &RequestFrame) -> Response {
    match &req.request {
        Request::Read { ty, names } => Response::Read {
            ty: *ty,
            values: vec![0; names.len()],
        },
        Request::ReadContinuous { len, .. } => Response::ReadContinuous {
            data: vec![0; *len as usize],
        },
        Request::Write { ty, items } => Response::Write {
            ty: *ty,
            blocks: items.len() as u16,
        },
        Request::WriteContinuous { .. } => Response::WriteContinuous,
    }
}

fn serve(mut s: TcpStream, mode: Mode, stop: &AtomicBool) {
    s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    while !stop.load(Ordering::Relaxed) {
        let mut f = vec![0u8; 20];
        match s.read_exact(&mut f) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(_) => return,
        }
        let len = u16::from_le_bytes([f[16], f[17]]) as usize;
        f.resize(20 + len, 0);
        if s.read_exact(&mut f[20..]).is_err() {
            return;
        }
        let req = RequestFrame::decode(&f).expect("the client's requests decode");
        let mut header = req.header.answer(Cpu::Xgk);
        let response = match mode {
            Mode::NakEverything => req.request.nak(NakCode::AREA_EXCEEDED),
            Mode::OtherInvoke => {
                header.invoke_id = header.invoke_id.wrapping_add(0x100);
                answer(&req)
            }
            _ => answer(&req),
        };
        let bytes = ResponseFrame {
            header,
            reserved: 0,
            response,
        }
        .encode()
        .unwrap();
        let sent = match mode {
            Mode::Silent => Ok(()),
            Mode::Truncated => s.write_all(&bytes[..bytes.len() - 3]),
            Mode::Garbage => s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n"),
            _ => s.write_all(&bytes),
        };
        if sent.is_err() {
            return;
        }
    }
}

/// A hostile PLC on a free port, misbehaving as told until `stop`.
fn plc(mode: Mode, stop: Arc<AtomicBool>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    l.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if let Ok((s, _)) = l.accept() {
                if matches!(mode, Mode::CloseAtOnce) {
                    drop(s);
                    continue;
                }
                s.set_nonblocking(false).unwrap();
                let stop = stop.clone();
                std::thread::spawn(move || serve(s, mode, &stop));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    port
}

fn client(port: u16, extra: &str) -> Rig {
    let l = layout(&[
        ("hmi.level", Area::Input, IecType::Int, "%IW0"),
        ("hmi.flag", Area::Input, IecType::Bool, "%IX2.0"),
    ]);
    let toml = format!(
        "[[device]]\nname = \"plc\"\nprotocol = \"xgt\"\nhost = \"127.0.0.1\"\nport = {port}\ncpu = \"XGK\"\n\
         poll_ms = 20\ntimeout_ms = 50\nretries = 0\nfail_after = 2\nreconnect_min_ms = 10\n{extra}\n\
         [[device.read]]\nvar = \"level\"\naddress = \"D100\"\n\
         [[device.read]]\nvar = \"flag\"\naddress = \"T5\"\n"
    );
    let cfg = parse("t.toml", &toml).unwrap();
    Rig::new(l, vec![Box::new(XgtClient::new("xgt", cfg.xgt_devices))])
}

/// Cycles every ms for `d`; returns the longest cycle.
fn cycle_for(r: &mut Rig, d: Duration) -> Duration {
    let end = Instant::now() + d;
    let mut worst = Duration::ZERO;
    while Instant::now() < end {
        let t = Instant::now();
        r.cycle();
        worst = worst.max(t.elapsed());
        std::thread::sleep(Duration::from_millis(1));
    }
    worst
}

/// Runs a client against a PLC in `mode`; returns the device's status.
fn check(mode: Mode, extra: &str) -> serde_json::Value {
    let stop = Arc::new(AtomicBool::new(false));
    let port = plc(mode, stop.clone());
    let mut r = client(port, extra);
    let worst = cycle_for(&mut r, Duration::from_millis(700));
    stop.store(true, Ordering::Relaxed);
    let st = r.status(0);
    assert_eq!(r.quality("hmi.level"), Quality::Bad, "{st}");
    assert_eq!(r.quality("hmi.flag"), Quality::Bad, "{st}");
    assert!(
        r.events().iter().any(|e| e.text.contains("inputs bad")),
        "{st}"
    );
    // A cycle that waited for the PLC would take the 50 ms timeout.
    assert!(worst < Duration::from_millis(10), "longest cycle {worst:?}");
    st["devices"]["plc"].clone()
}

#[test]
fn a_plc_that_naks_everything_leaves_its_ls_error_in_the_status() {
    let d = check(Mode::NakEverything, "");
    let err = d["last_error"].as_str().unwrap();
    assert!(
        err.contains("LS error 0x0004: device area exceeded") && err.contains("status 0xFFFF"),
        "{d}"
    );
    assert!(d["naks"].as_u64().unwrap() >= 2, "{d}");
    // NAKs are answers: no timeouts, no reconnection churn.
    assert_eq!(d["timeouts"], 0, "{d}");
}

#[test]
fn a_plc_answering_with_another_invoke_id_is_never_believed() {
    let d = check(Mode::OtherInvoke, "");
    let err = d["last_error"].as_str().unwrap();
    assert!(
        err.contains("invoke ID") && err.contains("matches no request"),
        "{d}"
    );
    assert!(d["timeouts"].as_u64().unwrap() >= 2, "{d}");
}

#[test]
fn a_truncated_answer_drops_the_connection() {
    // One request at a time: the cut answer is followed by nothing.
    let d = check(Mode::Truncated, "pipeline = 1");
    let err = d["last_error"].as_str().unwrap();
    assert!(err.contains("truncated answer"), "{d}");
    assert!(d["garbage"].as_u64().unwrap() >= 2, "{d}");
}

#[test]
fn a_truncated_answer_completed_by_the_next_one_is_garbage() {
    // Two requests in flight: the second answer's bytes complete the first one.
    let d = check(Mode::Truncated, "");
    let err = d["last_error"].as_str().unwrap();
    assert!(err.contains("garbled answer"), "{d}");
}

#[test]
fn a_silent_plc_times_out() {
    let d = check(Mode::Silent, "");
    assert!(d["timeouts"].as_u64().unwrap() >= 2, "{d}");
}

#[test]
fn a_plc_answering_garbage_is_dropped() {
    let d = check(Mode::Garbage, "");
    assert!(d["garbage"].as_u64().unwrap() >= 1, "{d}");
    assert!(
        d["last_error"].as_str().unwrap().contains("company ID")
            || d["last_error"].as_str().unwrap().contains("not connected"),
        "{d}"
    );
}

#[test]
fn a_plc_that_accepts_and_closes_is_retried_with_back_off() {
    let stop = Arc::new(AtomicBool::new(false));
    let port = plc(Mode::CloseAtOnce, stop.clone());
    let mut r = client(port, "");
    cycle_for(&mut r, Duration::from_millis(700));
    stop.store(true, Ordering::Relaxed);
    let st = r.status(0);
    assert_eq!(r.quality("hmi.level"), Quality::Bad, "{st}");
    // From 10 ms doubling: at most 0, 10, 30, 70, 150, 310, 630 ms (a connection that
    // never answered does not reset the back-off), not one per poll or faster.
    let connects = st["connections"][0]["connects"].as_u64().unwrap();
    assert!((2..=8).contains(&connects), "{st}");
}
