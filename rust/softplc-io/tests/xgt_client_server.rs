//! The XGT client driver polling the XGT server driver, both over real loopback sockets.

mod common;

use std::time::Duration;

use common::{layout, run_until, Rig};
use softplc_core::{Area, IecType, Quality, Value};
use softplc_io::config::parse;
use softplc_io::{XgtClient, XgtServer};

const MS: Duration = Duration::from_millis(1);

/// A "PLC": softplc's XGT server answering as an XGK CPU, with an explicit map in the
/// XGK names an HMI project would use.
fn plc_rig(extra_map: &str) -> Rig {
    let l = layout(&[
        ("plc.pressure", Area::Input, IecType::Int, "%IW0"),
        ("plc.flow", Area::Input, IecType::Real, "%ID1"),
        ("plc.lamp", Area::Output, IecType::Bool, "%QX0.0"),
        ("plc.speed", Area::Memory, IecType::Int, "%MW0"),
        ("plc.count", Area::Memory, IecType::Dint, "%MD1"),
        ("plc.limit", Area::Memory, IecType::Lreal, "%ML1"),
    ]);
    let toml = format!(
        r#"
[server.xgt]
listen = "127.0.0.1:0"
cpu = "XGK"

[[server.xgt.map]]
var = "pressure"
address = "D100"

[[server.xgt.map]]
var = "flow"
address = "D102"

[[server.xgt.map]]
var = "lamp"
address = "M172C"

[[server.xgt.map]]
vars = ["speed", "count", "limit"]
address = "D200"
{extra_map}
"#
    );
    let cfg = parse("plc.toml", &toml).unwrap();
    Rig::new(
        l,
        vec![Box::new(XgtServer::new(
            "xgt-server",
            cfg.xgt_server.unwrap(),
        ))],
    )
}

fn client_rig(port: u16, extra: &str, points: &str) -> Rig {
    let l = layout(&[
        ("hmi.pressure", Area::Input, IecType::Real, "%ID0"),
        ("hmi.flow", Area::Input, IecType::Real, "%ID1"),
        ("hmi.lamp", Area::Input, IecType::Bool, "%IX8.0"),
        ("hmi.speed", Area::Output, IecType::Int, "%QW0"),
        ("hmi.count", Area::Output, IecType::Dint, "%QD1"),
        ("hmi.limit", Area::Output, IecType::Lreal, "%QL1"),
        ("hmi.ok", Area::Input, IecType::Bool, "%IX9.0"),
    ]);
    let toml = format!(
        r#"
[[device]]
name = "press"
protocol = "xgt"
host = "127.0.0.1"
port = {port}
cpu = "XGK"
poll_ms = 10
timeout_ms = 200
fail_after = 2
reconnect_min_ms = 20
reconnect_max_ms = 100
health_var = "ok"
{extra}
{points}
"#
    );
    let cfg = parse("hmi.toml", &toml).unwrap();
    Rig::new(l, vec![Box::new(XgtClient::new("xgt", cfg.xgt_devices))])
}

const POINTS: &str = r#"
[[device.read]]
var = "pressure"
address = "D100"
type = "INT"
scale = 0.5

[[device.read]]
var = "flow"
address = "%DD51"

[[device.read]]
var = "lamp"
address = "M172C"

[[device.write]]
vars = ["speed", "count", "limit"]
address = "D200"
"#;

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

#[test]
fn values_flow_both_ways_through_xgk_names_with_scaling() {
    let mut plc = plc_rig("");
    let mut hmi = client_rig(port_of(&plc), "", POINTS);
    plc.set("plc.pressure", Value::Int(IecType::Int, -42));
    plc.set("plc.flow", Value::Real(12.25));
    plc.set("plc.lamp", Value::Bool(true));
    hmi.set("hmi.speed", Value::Int(IecType::Int, 1500));
    hmi.set("hmi.count", Value::Int(IecType::Dint, -70_000));
    hmi.set("hmi.limit", Value::Lreal(2.5e10));
    let ok = run_until(
        &mut [&mut plc, &mut hmi],
        Duration::from_secs(5),
        2 * MS,
        |r| {
            r[1].get("hmi.pressure") == Value::Real(-21.0)
                && r[1].get("hmi.flow") == Value::Real(12.25)
                && r[1].get("hmi.lamp") == Value::Bool(true)
                && r[0].get("plc.speed") == Value::Int(IecType::Int, 1500)
                && r[0].get("plc.count") == Value::Int(IecType::Dint, -70_000)
                && r[0].get("plc.limit") == Value::Lreal(2.5e10)
        },
    );
    assert!(
        ok,
        "pressure={} flow={} lamp={} speed={} count={} limit={}\nclient: {}\nserver: {}",
        hmi.get("hmi.pressure"),
        hmi.get("hmi.flow"),
        hmi.get("hmi.lamp"),
        plc.get("plc.speed"),
        plc.get("plc.count"),
        plc.get("plc.limit"),
        hmi.status(0),
        plc.status(0)
    );
    assert_eq!(hmi.quality("hmi.pressure"), Quality::Good);
    assert_eq!(hmi.get("hmi.ok"), Value::Bool(true));
    assert!(hmi.age_ns("hmi.flow") < 200_000_000);
    let st = hmi.status(0);
    let d = &st["devices"]["press"];
    // D100..D103 in one continuous read (the gap allowance bridges nothing here);
    // M172C: one more; the three written values: one continuous write.
    assert_eq!(d["read_requests_per_poll"], 2, "{st}");
    assert_eq!(d["write_requests"], 1, "{st}");
    assert_eq!(d["cpu"], "XGK");
    assert_eq!(d["naks"], 0, "{st}");
    assert_eq!(st["kind"], "xgt-client");
}

#[test]
fn an_area_the_plc_does_not_serve_turns_the_inputs_bad_with_the_ls_error_in_the_status() {
    let mut plc = plc_rig("");
    let points = "[[device.read]]\nvar = \"pressure\"\naddress = \"D900\"\ntype = \"INT\"\n";
    let mut hmi = client_rig(port_of(&plc), "retries = 0", points);
    let ok = run_until(
        &mut [&mut plc, &mut hmi],
        Duration::from_secs(5),
        2 * MS,
        |r| r[1].quality("hmi.pressure") == Quality::Bad,
    );
    let st = hmi.status(0);
    assert!(ok, "{st}");
    let d = &st["devices"]["press"];
    let err = d["last_error"].as_str().unwrap();
    assert!(
        err.contains("LS error 0x0004: device area exceeded") && err.contains("%DB1800"),
        "{err}"
    );
    assert!(d["naks"].as_u64().unwrap() >= 2, "{st}");
    // A NAK is an answer: the connection stays up.
    assert_eq!(st["connections"][0]["connects"], 1, "{st}");
    assert_eq!(hmi.get("hmi.ok"), Value::Bool(false));
    let plc_st = plc.status(0);
    assert!(
        plc_st["naks"]["0x0004"]["count"].as_u64().unwrap() >= 2,
        "{plc_st}"
    );
}

#[test]
fn a_restarted_plc_gets_its_outputs_written_again() {
    let mut plc = plc_rig("");
    let port = port_of(&plc);
    let mut hmi = client_rig(port, "", POINTS);
    hmi.set("hmi.speed", Value::Int(IecType::Int, 77));
    assert!(run_until(
        &mut [&mut plc, &mut hmi],
        Duration::from_secs(5),
        2 * MS,
        |r| { r[0].get("plc.speed") == Value::Int(IecType::Int, 77) }
    ));
    // The PLC goes away and comes back on the same port with its memory cleared.
    drop(plc);
    assert!(run_until(
        &mut [&mut hmi],
        Duration::from_secs(5),
        2 * MS,
        |r| { r[0].quality("hmi.pressure") == Quality::Bad }
    ));
    let toml = format!(
        "[server.xgt]\nlisten = \"127.0.0.1:{port}\"\ncpu = \"XGK\"\n[[server.xgt.map]]\nvar = \"pressure\"\naddress = \"D100\"\n[[server.xgt.map]]\nvar = \"flow\"\naddress = \"D102\"\n[[server.xgt.map]]\nvar = \"lamp\"\naddress = \"M172C\"\n[[server.xgt.map]]\nvars = [\"speed\", \"count\", \"limit\"]\naddress = \"D200\"\n"
    );
    let cfg = parse("plc.toml", &toml).unwrap();
    let mut plc = Rig::new(
        layout(&[
            ("plc.pressure", Area::Input, IecType::Int, "%IW0"),
            ("plc.flow", Area::Input, IecType::Real, "%ID1"),
            ("plc.lamp", Area::Output, IecType::Bool, "%QX0.0"),
            ("plc.speed", Area::Memory, IecType::Int, "%MW0"),
            ("plc.count", Area::Memory, IecType::Dint, "%MD1"),
            ("plc.limit", Area::Memory, IecType::Lreal, "%ML1"),
        ]),
        vec![Box::new(XgtServer::new(
            "xgt-server",
            cfg.xgt_server.unwrap(),
        ))],
    );
    assert_eq!(plc.get("plc.speed"), Value::Int(IecType::Int, 0));
    let ok = run_until(
        &mut [&mut plc, &mut hmi],
        Duration::from_secs(5),
        2 * MS,
        |r| {
            r[0].get("plc.speed") == Value::Int(IecType::Int, 77)
                && r[1].quality("hmi.pressure") == Quality::Good
        },
    );
    assert!(ok, "{}", hmi.status(0));
    let texts: Vec<String> = hmi.events().into_iter().map(|e| e.text).collect();
    assert!(
        texts.iter().any(|t| t.contains("outputs written again")),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.contains("answers again")),
        "{texts:?}"
    );
}
