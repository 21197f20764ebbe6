//! The client driver polling the server driver, both over real loopback sockets.

mod common;

use std::time::Duration;

use common::{layout, run_until, Rig};
use softplc_core::{Area, Driver, EventKind, IecType, IoEvent, IoEventKind, Quality, Value};
use softplc_io::config::{parse, ServerConfig};
use softplc_io::{ModbusClient, ModbusServer};

const MS: Duration = Duration::from_millis(1);

fn device_rig(port: u16) -> Rig {
    let l = layout(&[
        ("dev.level", Area::Input, IecType::Int, "%IW0"),
        ("dev.pump", Area::Output, IecType::Bool, "%QX0.0"),
        ("dev.temp", Area::Memory, IecType::Real, "%MD0"),
        ("dev.setpoint", Area::Output, IecType::Int, "%QW3"),
    ]);
    let cfg = ServerConfig::with_default_map(format!("127.0.0.1:{port}").parse().unwrap(), 1);
    Rig::new(l, vec![Box::new(ModbusServer::new("modbus-server", cfg))])
}

fn client_rig(port: u16, extra: &str) -> Rig {
    let l = layout(&[
        ("plc.level", Area::Input, IecType::Real, "%ID0"),
        ("plc.temp", Area::Input, IecType::Real, "%ID1"),
        ("plc.pump", Area::Output, IecType::Bool, "%QX0.0"),
        ("plc.sp", Area::Output, IecType::Int, "%QW1"),
        ("plc.comm_ok", Area::Input, IecType::Bool, "%IX20.0"),
    ]);
    let toml = format!(
        r#"
[[device]]
name = "dev"
host = "127.0.0.1"
port = {port}
poll_ms = 10
timeout_ms = 200
fail_after = 2
reconnect_min_ms = 20
reconnect_max_ms = 100
health_var = "comm_ok"
{extra}

[[device.read]]
var = "level"
table = "input_register"
address = 0
type = "INT"
scale = 0.5

[[device.read]]
var = "temp"
table = "holding_register"
address = 2048

[[device.write]]
var = "pump"
table = "coil"
address = 0

[[device.write]]
var = "sp"
table = "holding_register"
address = 3
"#
    );
    let cfg = parse("test.toml", &toml).unwrap();
    Rig::new(l, vec![Box::new(ModbusClient::new("modbus", cfg.devices))])
}

fn server_port(r: &Rig) -> u16 {
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
fn values_flow_both_ways_with_scaling_and_word_order() {
    let mut dev = device_rig(0);
    let port = server_port(&dev);
    let mut plc = client_rig(port, "");
    dev.set("dev.level", Value::Int(IecType::Int, -42));
    dev.set("dev.temp", Value::Real(21.5));
    plc.set("plc.pump", Value::Bool(true));
    plc.set("plc.sp", Value::Int(IecType::Int, 1234));
    let ok = run_until(
        &mut [&mut dev, &mut plc],
        Duration::from_secs(5),
        2 * MS,
        |r| {
            r[1].get("plc.level") == Value::Real(-21.0)
                && r[1].get("plc.temp") == Value::Real(21.5)
                && r[0].get("dev.pump") == Value::Bool(true)
                && r[0].get("dev.setpoint") == Value::Int(IecType::Int, 1234)
        },
    );
    assert!(
        ok,
        "level={} temp={} pump={} sp={}",
        plc.get("plc.level"),
        plc.get("plc.temp"),
        dev.get("dev.pump"),
        dev.get("dev.setpoint")
    );
    assert_eq!(plc.quality("plc.level"), Quality::Good);
    assert_eq!(plc.get("plc.comm_ok"), Value::Bool(true));
    // Two read requests per poll (input registers, holding registers), batched.
    let st = plc.status(0);
    assert_eq!(st["devices"]["dev"]["read_requests_per_poll"], 2, "{st}");
    assert!(
        plc.age_ns("plc.level") < 200_000_000,
        "age {}",
        plc.age_ns("plc.level")
    );
}

#[test]
fn a_vanished_device_turns_inputs_bad_then_recovers_and_outputs_are_rewritten() {
    let mut dev = device_rig(0);
    let port = server_port(&dev);
    let mut plc = client_rig(port, "");
    dev.set("dev.level", Value::Int(IecType::Int, 10));
    plc.set("plc.pump", Value::Bool(true));
    assert!(run_until(
        &mut [&mut dev, &mut plc],
        Duration::from_secs(5),
        2 * MS,
        |r| {
            r[1].get("plc.level") == Value::Real(5.0) && r[0].get("dev.pump") == Value::Bool(true)
        }
    ));
    // The device disappears.
    dev.drivers[0].stop();
    let t = std::time::Instant::now();
    assert!(run_until(
        &mut [&mut plc],
        Duration::from_secs(5),
        2 * MS,
        |r| r[0].quality("plc.level") == Quality::Bad
    ));
    // Bad after fail_after=2 polls of 10 ms (plus a reconnection attempt): well within a
    // second on a quiet machine; the bound leaves room for a loaded CI host.
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    // Keep-last-value policy; the program sees the failure through the health variable.
    assert_eq!(plc.get("plc.level"), Value::Real(5.0));
    assert_eq!(plc.get("plc.comm_ok"), Value::Bool(false));
    let st = plc.status(0);
    assert_eq!(st["devices"]["dev"]["health"], "bad", "{st}");
    let bad = plc
        .events()
        .into_iter()
        .find(|e| e.text.contains("inputs bad"))
        .expect("the device's failure is an event");
    assert_eq!(
        bad.kind,
        EventKind::Io(IoEvent::on_device(IoEventKind::DeviceBad, 0, 0))
    );
    // The device comes back with its outputs lost (a power cycle).
    dev.set("dev.pump", Value::Bool(false));
    dev.set("dev.level", Value::Int(IecType::Int, 20));
    let cfg = ServerConfig::with_default_map(format!("127.0.0.1:{port}").parse().unwrap(), 1);
    let mut server = ModbusServer::new("modbus-server", cfg);
    server.bind(&dev.layout).unwrap();
    server.start(&dev.cx).unwrap();
    dev.drivers[0] = Box::new(server);
    assert!(
        run_until(
            &mut [&mut dev, &mut plc],
            Duration::from_secs(5),
            2 * MS,
            |r| {
                r[1].quality("plc.level") == Quality::Good
                    && r[1].get("plc.level") == Value::Real(10.0)
                    && r[0].get("dev.pump") == Value::Bool(true)
            }
        ),
        "quality {:?} level {} pump {}",
        plc.quality("plc.level"),
        plc.get("plc.level"),
        dev.get("dev.pump")
    );
    let texts: Vec<String> = plc.events().into_iter().map(|e| e.text).collect();
    assert!(
        texts.iter().any(|t| t.contains("answers again")),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.contains("outputs written again")),
        "{texts:?}"
    );
    // The counter is updated by the I/O thread once the rewrite is done: wait for it.
    assert!(
        run_until(&mut [&mut plc], Duration::from_secs(5), 2 * MS, |r| {
            r[0].status(0)["devices"]["dev"]["rewrites"]
                .as_u64()
                .unwrap_or(0)
                >= 2
        }),
        "{} {texts:?}",
        plc.status(0)
    );
}

#[test]
fn substitute_policy_replaces_values_of_a_dead_device() {
    // Nobody listens on this port: bind and drop to find a free one.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut plc = client_rig(port, "on_fail = \"substitute\"");
    // The read mappings carry no substitute, so they take 0.
    plc.set("plc.level", Value::Real(99.0));
    assert!(run_until(
        &mut [&mut plc],
        Duration::from_secs(3),
        2 * MS,
        |r| r[0].quality("plc.level") == Quality::Bad
    ));
    assert_eq!(plc.get("plc.level"), Value::Real(0.0));
    let st = plc.status(0);
    assert!(
        st["devices"]["dev"]["last_error"]
            .as_str()
            .unwrap()
            .contains("not connected"),
        "{st}"
    );
    assert!(
        st["connections"][0]["connect_failures"].as_u64().unwrap() >= 1,
        "{st}"
    );
}

#[test]
fn inputs_are_stale_until_the_first_answer() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut plc = client_rig(port, "");
    plc.cycle();
    assert_eq!(plc.quality("plc.level"), Quality::Stale);
}
