//! The XGT server against every bad request (each with its NAK code) and hostile frames
//! (random bytes, lying lengths, 1,000 blocks claimed, names of 0 and 200 characters):
//! it answers, keeps serving, and the scan runs on undisturbed.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{layout, Rig};
use softplc_core::{Area, IecType, Value, VarDecl, WriteRule};
use softplc_io::config::{parse, XgtServerConfig};
use softplc_io::xgt::codec::{DataType, Name, Request, RequestFrame, Response, ResponseFrame};
use softplc_io::xgt::header::{bcc, Header};
use softplc_io::xgt::{Cpu, NakCode};
use softplc_io::XgtServer;

fn port_of(r: &Rig) -> u16 {
    r.status(0)["listen"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// An XGI-type server with the default map: `%MW0` is the image's `%MW0`.
fn iec_rig() -> (Rig, u16) {
    let l = layout(&[
        ("p.in0", Area::Input, IecType::Bool, "%IX0.0"),
        ("p.level", Area::Input, IecType::Int, "%IW1"),
        ("p.lamp", Area::Output, IecType::Bool, "%QX0.3"),
        ("p.speed", Area::Output, IecType::Int, "%QW1"),
        ("p.sp", Area::Memory, IecType::Int, "%MW0"),
        ("p.total", Area::Memory, IecType::Lreal, "%ML1"),
    ]);
    let cfg = XgtServerConfig::with_default_map("127.0.0.1:0".parse().unwrap(), Cpu::Xgi);
    let r = Rig::new(l, vec![Box::new(XgtServer::new("xgt-server", cfg))]);
    let port = port_of(&r);
    (r, port)
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Reads one answer frame (None: the connection closed without one).
fn read_answer(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut f = vec![0u8; 20];
    s.read_exact(&mut f).ok()?;
    let len = u16::from_le_bytes([f[16], f[17]]) as usize;
    f.resize(20 + len, 0);
    s.read_exact(&mut f[20..]).ok()?;
    Some(f)
}

fn send(s: &mut TcpStream, bytes: &[u8]) -> Option<ResponseFrame> {
    s.write_all(bytes).ok()?;
    let f = read_answer(s)?;
    Some(ResponseFrame::decode(&f).expect("the server's answers decode"))
}

fn request(invoke: u16, req: Request) -> Vec<u8> {
    RequestFrame {
        header: Header::request(Cpu::Xgi, invoke),
        request: req,
    }
    .encode()
    .unwrap()
}

fn name(s: &str) -> Name {
    Name::new(s.as_bytes()).unwrap()
}

fn read(names: &[&str], ty: DataType) -> Request {
    Request::Read {
        ty,
        names: names.iter().map(|n| name(n)).collect(),
    }
}

/// A raw frame: a valid header (with BCC) around `instruction`.
fn raw(invoke: u16, instruction: &[u8]) -> Vec<u8> {
    let mut f = Header::request(Cpu::Xgi, invoke)
        .encode(instruction.len() as u16)
        .to_vec();
    f.extend_from_slice(instruction);
    f
}

/// The NAK code of an answer (None for a positive answer).
fn nak(r: &ResponseFrame) -> Option<u16> {
    match r.response {
        Response::Nak { code, .. } => Some(code.code()),
        _ => None,
    }
}

/// Cycles the rig on this thread while `f` talks to the server on another; returns
/// `f`'s result and the number of cycles run.
fn with_scan<R: Send>(rig: &mut Rig, f: impl FnOnce() -> R + Send) -> (R, u64) {
    std::thread::scope(|sc| {
        // Finished also when `f` panics: the panic is then raised here.
        let h = sc.spawn(f);
        let mut cycles = 0;
        while !h.is_finished() {
            rig.cycle();
            cycles += 1;
            std::thread::sleep(Duration::from_millis(1));
        }
        match h.join() {
            Ok(r) => (r, cycles),
            Err(p) => std::panic::resume_unwind(p),
        }
    })
}

/// A good read on a fresh connection: the server still serves.
fn still_serving(port: u16) {
    let mut s = connect(port);
    let r = send(&mut s, &request(9, read(&["%MW0"], DataType::Word))).unwrap();
    assert!(matches!(r.response, Response::Read { .. }), "{r:?}");
}

#[test]
fn every_bad_request_gets_its_nak_code_and_the_connection_survives() {
    let (mut r, port) = iec_rig();
    r.set("p.sp", Value::Int(IecType::Int, 1234));
    r.cycle();
    let (_, _) = with_scan(&mut r, || {
        let mut s = connect(port);
        let mut ask = |bytes: Vec<u8>| send(&mut s, &bytes).expect("an answer");
        let w = DataType::Word;
        // A good read first: the value published by the scan.
        let a = ask(request(1, read(&["%MW0"], w)));
        assert_eq!(
            a.response,
            Response::Read {
                ty: w,
                values: vec![1234]
            }
        );
        assert_eq!(a.header.invoke_id, 1);
        // 0x0001: no blocks, 17 blocks, 1,000 blocks claimed.
        assert_eq!(
            nak(&ask(raw(2, &[0x54, 0, 2, 0, 0, 0, 0, 0]))),
            Some(0x0001)
        );
        let seventeen = vec!["%MW0"; 17];
        let mut f = raw(3, &[0x54, 0, 2, 0, 0, 0, 17, 0]);
        for n in &seventeen {
            f.extend_from_slice(&(n.len() as u16).to_le_bytes());
            f.extend_from_slice(n.as_bytes());
        }
        let len = (f.len() - 20) as u16;
        f[16..18].copy_from_slice(&len.to_le_bytes());
        f[19] = bcc(f[..20].try_into().unwrap());
        assert_eq!(nak(&ask(f)), Some(0x0001));
        let claimed = raw(
            4,
            &[
                0x54, 0, 2, 0, 0, 0, 0xE8, 0x03, 4, 0, b'%', b'M', b'W', b'0',
            ],
        );
        assert_eq!(nak(&ask(claimed)), Some(0x0001));
        // 0x0002: unknown data type; a name whose size letter is not the request's.
        assert_eq!(
            nak(&ask(raw(5, &[0x54, 0, 9, 0, 0, 0, 1, 0]))),
            Some(0x0002)
        );
        assert_eq!(nak(&ask(request(6, read(&["%MD0"], w)))), Some(0x0002));
        // 0x0011: names of 0 and 200 characters.
        assert_eq!(
            nak(&ask(raw(7, &[0x54, 0, 2, 0, 0, 0, 1, 0, 0, 0]))),
            Some(0x0011)
        );
        let mut long = vec![0x54, 0, 2, 0, 0, 0, 1, 0, 200, 0];
        long.extend(std::iter::repeat_n(b'M', 200));
        assert_eq!(nak(&ask(raw(8, &long))), Some(0x0011));
        // 0x0003: not a device of the CPU; a hierarchical name; a non-ASCII name.
        assert_eq!(nak(&ask(request(9, read(&["%DW0"], w)))), Some(0x0003));
        assert_eq!(
            nak(&ask(request(10, read(&["%IX0.0.1"], DataType::Bit)))),
            Some(0x0003)
        );
        assert_eq!(
            nak(&ask(raw(
                11,
                &[0x54, 0, 2, 0, 0, 0, 1, 0, 4, 0, b'%', b'M', 0xC3, b'0']
            ))),
            Some(0x0003)
        );
        // 0x0004: past the served area (the memory area holds 16 bytes).
        assert_eq!(nak(&ask(request(12, read(&["%MW8"], w)))), Some(0x0004));
        assert_eq!(
            nak(&ask(request(
                13,
                Request::ReadContinuous {
                    name: name("%MB10"),
                    len: 7
                }
            ))),
            Some(0x0004)
        );
        // 0x0005: a continuous block beyond 1,400 bytes.
        assert_eq!(
            nak(&ask(raw(
                14,
                &[0x54, 0, 0x14, 0, 0, 0, 1, 0, 4, 0, b'%', b'M', b'B', b'0', 0x79, 0x05]
            ))),
            Some(0x0005)
        );
        // 0x0012: a continuous transfer from a word name.
        assert_eq!(
            nak(&ask(request(
                15,
                Request::ReadContinuous {
                    name: name("%MW0"),
                    len: 2
                }
            ))),
            Some(0x0012)
        );
        // 0x0077: a BCC that is neither 0 nor the sum; the frame is delimited, so the
        // connection goes on.
        let mut bad = request(16, read(&["%MW0"], w));
        bad[19] = bad[19].wrapping_add(1);
        let a = ask(bad);
        assert_eq!((nak(&a), a.header.invoke_id), (Some(0x0077), 16));
        // A BCC of 0 is accepted.
        let mut zero = request(17, read(&["%MW0"], w));
        zero[19] = 0;
        assert_eq!(nak(&ask(zero)), None);
        // 0x0078: a command other than read and write.
        assert_eq!(
            nak(&ask(raw(18, &[0x56, 0, 2, 0, 0, 0, 1, 0]))),
            Some(0x0078)
        );
        // 0x0076: a Length shorter than the instruction (the rest is then not a frame:
        // the connection is closed after its NAK).
        let good = request(19, read(&["%MW0"], w));
        let mut short = good.clone();
        short[16] -= 2;
        short[19] = bcc(short[..20].try_into().unwrap());
        assert_eq!(nak(&ask(short)), Some(0x0076));
        assert!(
            send(&mut s, &good).is_none_or(|a| nak(&a) == Some(0x0075)),
            "the leftover bytes are no frame"
        );
    });
    still_serving(port);
    let st = r.status(0);
    assert!(st["naks"]["0x0001"]["count"].as_u64().unwrap() >= 3, "{st}");
    assert_eq!(r.get("p.sp"), Value::Int(IecType::Int, 1234));
}

#[test]
fn hostile_streams_are_answered_and_closed_while_the_scan_runs_on() {
    let (mut r, port) = iec_rig();
    r.set("p.sp", Value::Int(IecType::Int, 55));
    let (_, cycles) = with_scan(&mut r, || {
        // Random bytes: not a company ID; NAK 0x0075, then the connection is closed.
        let mut s = connect(port);
        let mut x: u32 = 0x2545_F491;
        let junk: Vec<u8> = (0..8192)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let _ = s.write_all(&junk);
        let a = read_answer(&mut s).expect("a NAK before the close");
        assert_eq!(nak(&ResponseFrame::decode(&a).unwrap()), Some(0x0075));
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        // A Length beyond any request: NAK 0x0076 and closed, without waiting for the
        // 60,000 bytes it announces.
        let mut s = connect(port);
        let mut f = request(1, read(&["%MW0"], DataType::Word));
        f[16..18].copy_from_slice(&60000u16.to_le_bytes());
        f[19] = bcc(f[..20].try_into().unwrap());
        let a = send(&mut s, &f).expect("a NAK");
        assert_eq!(nak(&a), Some(0x0076));
        // A Length that promises more than comes: the server waits for the rest on that
        // connection and meanwhile serves others.
        let mut liar = connect(port);
        let mut f = request(2, read(&["%MW0"], DataType::Word));
        f[16..18].copy_from_slice(&1400u16.to_le_bytes());
        f[19] = bcc(f[..20].try_into().unwrap());
        liar.write_all(&f).unwrap();
        still_serving(port);
        drop(liar);
        // Old GLOFA company IDs are answered in kind.
        let mut s = connect(port);
        let mut g = request(3, read(&["%MW0"], DataType::Word));
        g[..10].copy_from_slice(b"LGIS-GLOFA");
        g[19] = bcc(g[..20].try_into().unwrap());
        let a = send(&mut s, &g).unwrap();
        assert_eq!(&a.header.company.bytes(), b"LGIS-GLOFA");
        assert!(matches!(a.response, Response::Read { .. }));
    });
    still_serving(port);
    // The scan cycled on while the server was under attack, and nothing reached the
    // image.
    assert!(cycles > 0);
    assert_eq!(r.get("p.sp"), Value::Int(IecType::Int, 55));
    let st = r.status(0);
    assert!(st["closed_malformed"].as_u64().unwrap() >= 2, "{st}");
}

#[test]
fn client_writes_reach_the_image_and_read_back_at_once() {
    let (mut r, port) = iec_rig();
    with_scan(&mut r, || {
        let mut s = connect(port);
        let items = vec![
            softplc_io::xgt::WriteItem {
                name: name("%MW0"),
                value: (-5i16) as u16 as u64,
            },
            softplc_io::xgt::WriteItem {
                name: name("%IW1"),
                value: 300,
            },
        ];
        let a = send(
            &mut s,
            &request(
                1,
                Request::Write {
                    ty: DataType::Word,
                    items,
                },
            ),
        )
        .unwrap();
        assert_eq!(
            a.response,
            Response::Write {
                ty: DataType::Word,
                blocks: 2
            }
        );
        // Read back at once: the client's own values, not older image values.
        let a = send(&mut s, &request(2, read(&["%MW0", "%IW1"], DataType::Word))).unwrap();
        assert_eq!(
            a.response,
            Response::Read {
                ty: DataType::Word,
                values: vec![0xFFFB, 300]
            }
        );
        // A bit, and an LREAL as bytes of a continuous write.
        let bit = Request::Write {
            ty: DataType::Bit,
            items: vec![softplc_io::xgt::WriteItem {
                name: name("%QX3"),
                value: 1,
            }],
        };
        assert!(nak(&send(&mut s, &request(3, bit)).unwrap()).is_none());
        let cont = Request::WriteContinuous {
            name: name("%MB8"),
            data: 6.5f64.to_le_bytes().to_vec(),
        };
        assert!(nak(&send(&mut s, &request(4, cont)).unwrap()).is_none());
        std::thread::sleep(Duration::from_millis(20));
    });
    assert_eq!(r.get("p.sp"), Value::Int(IecType::Int, -5));
    assert_eq!(r.get("p.level"), Value::Int(IecType::Int, 300));
    assert_eq!(r.get("p.total"), Value::Lreal(6.5));
    // An output written by a client: the program owns it, but the write landed.
    assert_eq!(r.status(0)["writes_applied"].as_u64().unwrap(), 4);
}

#[test]
fn read_only_devices_and_variable_rules_refuse_writes_whole() {
    let mut b = softplc_core::LayoutBuilder::new();
    let mut sp = VarDecl::new("p.sp", Area::Memory, IecType::Int, Some("%MW0"));
    sp.rule = WriteRule {
        writable: true,
        min: Some(Value::Int(IecType::Int, 0)),
        max: Some(Value::Int(IecType::Int, 100)),
        domain: None,
    };
    b.declare(sp).unwrap();
    let mut fixed = VarDecl::new("p.fixed", Area::Memory, IecType::Int, Some("%MW1"));
    fixed.rule = WriteRule {
        writable: false,
        min: None,
        max: None,
        domain: None,
    };
    b.declare(fixed).unwrap();
    b.declare(VarDecl::new(
        "p.other",
        Area::Memory,
        IecType::Int,
        Some("%MW2"),
    ))
    .unwrap();
    b.declare(VarDecl::new(
        "p.in",
        Area::Input,
        IecType::Int,
        Some("%IW0"),
    ))
    .unwrap();
    let cfg = parse(
        "s.toml",
        "[server.xgt]\nlisten = \"127.0.0.1:0\"\nread_only = [\"I\"]\n",
    )
    .unwrap()
    .xgt_server
    .unwrap();
    let mut r = Rig::new(
        b.build().unwrap(),
        vec![Box::new(XgtServer::new("xgt-server", cfg))],
    );
    let port = port_of(&r);
    let w = |n: &str, v: u64| softplc_io::xgt::WriteItem {
        name: name(n),
        value: v,
    };
    with_scan(&mut r, || {
        let mut s = connect(port);
        let mut write = |invoke: u16, items: Vec<softplc_io::xgt::WriteItem>| {
            let a = send(
                &mut s,
                &request(
                    invoke,
                    Request::Write {
                        ty: DataType::Word,
                        items,
                    },
                ),
            );
            nak(&a.unwrap())
        };
        assert_eq!(write(1, vec![w("%IW0", 1)]), Some(0x0003));
        assert_eq!(write(2, vec![w("%MW1", 1)]), Some(0x0003));
        // Out of range, together with a good value: nothing is written.
        assert_eq!(write(3, vec![w("%MW2", 9), w("%MW0", 101)]), Some(0x0010));
        assert_eq!(write(4, vec![w("%MW0", 100)]), None);
        // A continuous write that would put 200 in p.sp through its bytes.
        let a = send(
            &mut s,
            &request(
                5,
                Request::WriteContinuous {
                    name: name("%MB0"),
                    data: vec![200, 0],
                },
            ),
        );
        assert_eq!(nak(&a.unwrap()), Some(0x0010));
        std::thread::sleep(Duration::from_millis(20));
    });
    assert_eq!(r.get("p.sp"), Value::Int(IecType::Int, 100));
    assert_eq!(r.get("p.other"), Value::Int(IecType::Int, 0));
    let st = r.status(0);
    assert_eq!(st["writes_refused"], 4, "{st}");
    assert!(r
        .events()
        .iter()
        .any(|e| e.text.contains("refused") && e.text.contains("p.sp")));
    let _ = NakCode::DEVICE;
}

#[test]
fn the_connection_limit_makes_room_only_by_closing_an_idle_connection() {
    let l = layout(&[("p.sp", Area::Memory, IecType::Int, "%MW0")]);
    let mut cfg = XgtServerConfig::with_default_map("127.0.0.1:0".parse().unwrap(), Cpu::XgbIec);
    cfg.max_connections = 2;
    let mut r = Rig::new(l, vec![Box::new(XgtServer::new("xgt-server", cfg))]);
    let port = port_of(&r);
    with_scan(&mut r, || {
        let mut a = connect(port);
        let mut b = connect(port);
        assert!(send(&mut a, &request(1, read(&["%MW0"], DataType::Word))).is_some());
        assert!(send(&mut b, &request(1, read(&["%MW0"], DataType::Word))).is_some());
        // A third, while both are busy: refused (closed without an answer).
        let mut c = connect(port);
        assert!(send(&mut c, &request(1, read(&["%MW0"], DataType::Word))).is_none());
        // Once one has been idle a second, a newcomer takes its place.
        std::thread::sleep(Duration::from_millis(1100));
        assert!(send(&mut b, &request(2, read(&["%MW0"], DataType::Word))).is_some());
        let mut d = connect(port);
        assert!(send(&mut d, &request(1, read(&["%MW0"], DataType::Word))).is_some());
        assert!(send(&mut a, &request(2, read(&["%MW0"], DataType::Word))).is_none());
        // The XGB's continuous limit: 512 bytes.
        let big = raw(
            5,
            &[
                0x54, 0, 0x14, 0, 0, 0, 1, 0, 4, 0, b'%', b'M', b'B', b'0', 0x01, 0x02,
            ],
        );
        assert_eq!(nak(&send(&mut d, &big).unwrap()), Some(0x0005));
    });
    let st = r.status(0);
    assert_eq!(st["refused_limit"], 1, "{st}");
    assert_eq!(st["evicted"], 1, "{st}");
}
