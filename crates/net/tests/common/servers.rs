//! Far-side servers for the lab, run in the `srv` namespace on their own thread and runtime:
//! DNS, TCP listeners, an NTP and a CoAP responder, TLS servers with certificates made here
//! (one from the expected "ARM Bootstrap CA", one from an intercepting CA), and Portolan's
//! responder. Dropping [`Servers`] stops them.

use std::net::SocketAddr;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
};
use tokio::net::{TcpListener, UdpSocket};

use super::dns_server::{self, Zone};

#[derive(Clone)]
pub enum Service {
    Dns(SocketAddr, Zone),
    Tcp(SocketAddr),
    Ntp(SocketAddr),
    Coap(SocketAddr),
    /// A TLS server: address, its certificate's names, and the issuer's attributes.
    Tls(SocketAddr, Vec<String>, Vec<(DnType, String)>),
    Responder(SocketAddr, String),
    /// Answers an IKE_SA_INIT with a bare response header (NAT-T marker kept on 4500).
    Ike(SocketAddr),
}

pub struct Servers {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Servers {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The expected issuer of the Izuma bootstrap server, as the seed prints it.
pub fn arm_bootstrap_ca() -> Vec<(DnType, String)> {
    vec![
        (DnType::CountryName, "GB".into()),
        (DnType::StateOrProvinceName, "Cambridgeshire".into()),
        (DnType::LocalityName, "Cambridge".into()),
        (DnType::OrganizationName, "ARM Ltd".into()),
        (DnType::CommonName, "ARM Bootstrap CA".into()),
    ]
}

/// A TLS-inspecting firewall's CA.
pub fn inspection_ca() -> Vec<(DnType, String)> {
    vec![
        (DnType::CountryName, "US".into()),
        (DnType::OrganizationName, "Inspecting Firewall Inc".into()),
        (DnType::CommonName, "Inspection CA".into()),
    ]
}

fn tls_config(names: &[String], issuer_dn: &[(DnType, String)]) -> Arc<rustls::ServerConfig> {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    let mut dn = DistinguishedName::new();
    for (k, v) in issuer_dn {
        dn.push(k.clone(), v.clone());
    }
    ca.distinguished_name = dn;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate().expect("leaf key");
    let mut leaf = CertificateParams::new(names.to_vec()).expect("leaf params");
    let mut ldn = DistinguishedName::new();
    ldn.push(
        DnType::CommonName,
        names.first().cloned().unwrap_or_default(),
    );
    leaf.distinguished_name = ldn;
    let cert = leaf.signed_by(&leaf_key, &issuer).expect("sign leaf");
    let key =
        rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).expect("key der");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .expect("server config");
    Arc::new(cfg)
}

async fn serve(s: Service) {
    match s {
        Service::Dns(a, z) => {
            dns_server::start(a, z).await;
            std::future::pending::<()>().await;
        }
        Service::Tcp(a) => {
            let l = TcpListener::bind(a).await.expect("bind tcp");
            loop {
                if let Ok((c, _)) = l.accept().await {
                    drop(c);
                }
            }
        }
        Service::Ntp(a) => {
            let u = UdpSocket::bind(a).await.expect("bind ntp");
            let mut buf = [0u8; 512];
            loop {
                let Ok((n, from)) = u.recv_from(&mut buf).await else {
                    continue;
                };
                if n < 48 || buf[0] & 7 != 3 {
                    continue;
                }
                let mut r = [0u8; 48];
                r[0] = 0x24; // LI 0, VN 4, mode 4 (server)
                r[1] = 2;
                r[24..32].copy_from_slice(&buf[40..48]);
                let _ = u.send_to(&r, from).await;
            }
        }
        Service::Coap(a) => {
            let u = UdpSocket::bind(a).await.expect("bind coap");
            let mut buf = [0u8; 512];
            loop {
                let Ok((n, from)) = u.recv_from(&mut buf).await else {
                    continue;
                };
                // An empty confirmable message is answered by a reset with its message id.
                if n == 4 && buf[0] == 0x40 && buf[1] == 0 {
                    let _ = u.send_to(&[0x70, 0, buf[2], buf[3]], from).await;
                }
            }
        }
        Service::Tls(a, names, issuer) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(tls_config(&names, &issuer));
            let l = TcpListener::bind(a).await.expect("bind tls");
            loop {
                if let Ok((c, _)) = l.accept().await {
                    let acc = acceptor.clone();
                    tokio::spawn(async move {
                        let _ = acc.accept(c).await;
                    });
                }
            }
        }
        Service::Ike(a) => {
            let u = UdpSocket::bind(a).await.expect("bind ike");
            let mut buf = [0u8; 2048];
            loop {
                let Ok((n, from)) = u.recv_from(&mut buf).await else {
                    continue;
                };
                let marker = a.port() == 4500;
                let off = if marker { 4 } else { 0 };
                if n < off + 28 || buf[off + 18] != 34 {
                    continue;
                }
                let mut r = buf[..off + 28].to_vec();
                r[off + 8..off + 16].copy_from_slice(&[9; 8]); // SPIr
                r[off + 16] = 0; // no payload
                r[off + 19] = 0x20; // response
                r[off + 24..off + 28].copy_from_slice(&28u32.to_be_bytes());
                let _ = u.send_to(&r, from).await;
            }
        }
        Service::Responder(a, token) => {
            let b = portolan_net::responder::bind(&[a], &token, Default::default())
                .await
                .expect("bind responder");
            b.serve().await;
        }
    }
}

/// Starts `services` inside namespace `ns`; they are listening when this returns.
pub fn start(ns: &str, services: Vec<Service>) -> Servers {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready, is_ready) = std::sync::mpsc::channel::<()>();
    let thread = portolan_net::netns::spawn_in(ns, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            for s in services {
                tokio::spawn(serve(s));
            }
            // Let every task bind before the test sends anything.
            for _ in 0..20 {
                tokio::task::yield_now().await;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let _ = ready.send(());
            let _ = stopped.await;
        });
    })
    .expect("enter srv namespace");
    is_ready.recv().expect("servers started");
    Servers {
        stop: Some(stop),
        thread: Some(thread),
    }
}
