//! A node killed with SIGKILL and restarted on the same port resets its predecessor's
//! connections at once (QUIC stateless reset), so its peers redial instead of sending into
//! a dead connection until the idle timeout.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use certs::Identity;
use transport::{
    ALPN_PEER, Endpoint, EndpointConfig, Expect, InboundTrust, Received, TransportError,
};

const DIR_VAR: &str = "TRANSPORT_RESTART_TEST_DIR";
const ADDR_VAR: &str = "TRANSPORT_RESTART_TEST_ADDR";

/// The server process: loads the identity from the directory, serves echo requests on the
/// address and prints `ready`. Run only by the test below, in a child process.
#[tokio::test]
#[ignore = "run as a child process by the_restarted_node_resets_old_connections_at_once"]
async fn restart_server_process() {
    let (Ok(dir), Ok(addr)) = (std::env::var(DIR_VAR), std::env::var(ADDR_VAR)) else {
        return;
    };
    let dir = Path::new(&dir);
    let identity = Identity::load(&dir.join("s.crt"), &dir.join("s.key")).unwrap();
    let config = EndpointConfig::new(addr.parse().unwrap(), InboundTrust::Open, &[ALPN_PEER]);
    let endpoint = Endpoint::bind(identity, config).unwrap();
    println!("ready");
    while let Some(Ok(connection)) = endpoint.accept().await {
        tokio::spawn(async move {
            while let Ok(stream) = connection.accept().await {
                if let Ok(Received::Request(text, responder)) = stream.read::<String>().await {
                    let _ = responder.respond(&text).await;
                }
            }
        });
    }
}

fn start_server(dir: &Path, addr: SocketAddr) -> Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "restart::restart_server_process",
            "--nocapture",
        ])
        .env(DIR_VAR, dir)
        .env(ADDR_VAR, addr.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("ready") {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "server exited early"
        );
    }
    child
}

#[tokio::test]
async fn the_restarted_node_resets_old_connections_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let server_identity = Identity::generate_self_signed("s").unwrap();
    server_identity
        .save(&dir.path().join("s.crt"), &dir.path().join("s.key"))
        .unwrap();
    let addr = transport::ports::unused_loopback_addr().unwrap();
    let mut server = start_server(dir.path(), addr);

    let client = Endpoint::bind(
        Identity::generate_self_signed("c").unwrap(),
        EndpointConfig::new("127.0.0.1:0".parse().unwrap(), InboundTrust::Open, &[]),
    )
    .unwrap();
    let expect = Expect::Fingerprint(server_identity.fingerprint());
    let connection = client.connect(addr, &expect, ALPN_PEER).await.unwrap();
    let echoed: String = connection.request("one").await.unwrap();
    assert_eq!(echoed, "one");

    server.kill().unwrap();
    server.wait().unwrap();
    let mut server = start_server(dir.path(), addr);

    // The old connection is reset by the new process, long before the 30 s idle timeout.
    let err = tokio::time::timeout(
        Duration::from_secs(10),
        connection.request::<_, String>("two"),
    )
    .await
    .expect("the dead connection was not reset")
    .unwrap_err();
    assert!(
        matches!(
            err,
            TransportError::ConnectionLost(quinn::ConnectionError::Reset)
        ),
        "{err}"
    );
    let connection = client.connect(addr, &expect, ALPN_PEER).await.unwrap();
    let echoed: String = connection.request("three").await.unwrap();
    assert_eq!(echoed, "three");
    server.kill().unwrap();
    server.wait().unwrap();
}
