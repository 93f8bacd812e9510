// tls_test.cpp — wss://: a server with a certificate, clients that verify it
// (by CA file), skip verification, or refuse a certificate they cannot trust.
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include <unistd.h>

#include "test_util.hpp"

using namespace wht;

namespace {

// A throwaway self-signed certificate for 127.0.0.1 and localhost, written
// as PEM files in a fresh temporary directory.
struct SelfSigned {
  std::string dir, cert, key;
  SelfSigned() {
    char tmpl[] = "/tmp/wirehub-tls-XXXXXX";
    dir = mkdtemp(tmpl);
    cert = dir + "/cert.pem";
    key = dir + "/key.pem";
    EVP_PKEY* pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pkey);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("wirehub test"), -1,
                               -1, 0);
    X509_set_issuer_name(x, name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
    for (auto [nid, value] : {std::pair{NID_subject_alt_name, "IP:127.0.0.1, DNS:localhost"},
                              std::pair{NID_basic_constraints, "critical, CA:TRUE"}}) {
      X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
      X509_add_ext(x, ext, -1);
      X509_EXTENSION_free(ext);
    }
    X509_sign(x, pkey, EVP_sha256());
    FILE* f = std::fopen(cert.c_str(), "w");
    PEM_write_X509(f, x);
    std::fclose(f);
    f = std::fopen(key.c_str(), "w");
    PEM_write_PrivateKey(f, pkey, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    X509_free(x);
    EVP_PKEY_free(pkey);
  }
  ~SelfSigned() {
    ::unlink(cert.c_str());
    ::unlink(key.c_str());
    ::rmdir(dir.c_str());
  }
};

class Tls : public ::testing::Test {
 protected:
  void SetUp() override {
    hub_.set_handler(echo_handler);
    wh_server_options o = server_options();
    o.tls.cert_file = certs_.cert.c_str();
    o.tls.key_file = certs_.key.c_str();
    server_ = hub_.listen(o);
    ASSERT_NE(server_, nullptr);
    port_ = wh_server_port(server_);
  }
  void TearDown() override { hub_.destroy(); }

  wh_conn* connect(const std::string& host, const wh_client_options& o) {
    wh_conn* c = nullptr;
    std::string url = "wss://" + host + ":" + std::to_string(port_) + "/";
    EXPECT_EQ(wh_connect(hub_.get(), url.c_str(), &o, &c), 0);
    return c;
  }
  void expect_echo(wh_conn* c) {
    auto open = hub_.rec().wait_event(0, c);
    ASSERT_TRUE(open.has_value()) << hub_.rec().dump();
    ASSERT_EQ(open->type, WH_EV_OPEN) << hub_.rec().dump();
    std::string big(200000, 'x');  // many TLS records, partial writes
    ASSERT_GE(wh_conn_send(c, "over tls", 8, WH_TEXT), 0);
    ASSERT_GE(wh_conn_send(c, big.data(), big.size(), WH_BINARY), 0);
    ASSERT_TRUE(hub_.rec().wait_count(WH_EV_MESSAGE, 2, c, 5000)) << hub_.rec().dump();
    auto msgs = hub_.rec().events(WH_EV_MESSAGE, c);
    EXPECT_EQ(msgs[0].data, "over tls");
    EXPECT_EQ(msgs[1].data, big);
    ASSERT_EQ(wh_conn_close(c, 1000, "bye", 3), 0);
    auto closed = hub_.rec().wait_event(WH_EV_CLOSE, c);
    ASSERT_TRUE(closed.has_value());
    EXPECT_EQ(closed->code, 1000);
    EXPECT_EQ(closed->error, 0) << wh_err_name(closed->error);
  }

  SelfSigned certs_;
  TestHub hub_;
  wh_server* server_ = nullptr;
  int port_ = 0;
};

}  // namespace

TEST_F(Tls, ClientTrustingTheCaFileEchoesOverWss) {
  wh_client_options o = client_options();
  o.tls.ca_file = certs_.cert.c_str();
  expect_echo(connect("127.0.0.1", o));
}

TEST_F(Tls, HostNameIsVerifiedAgainstTheCertificate) {
  wh_client_options o = client_options();
  o.tls.ca_file = certs_.cert.c_str();
  expect_echo(connect("localhost", o));
}

TEST_F(Tls, InsecureClientSkipsVerification) {
  wh_client_options o = client_options();
  o.tls.insecure = 1;
  expect_echo(connect("127.0.0.1", o));
}

TEST_F(Tls, UntrustedCertificateFailsWithETLS) {
  wh_client_options o = client_options();  // system CAs only: our certificate is unknown
  wh_conn* c = connect("127.0.0.1", o);
  auto e = hub_.rec().wait_event(WH_EV_CLOSE, c);
  ASSERT_TRUE(e.has_value()) << hub_.rec().dump();
  EXPECT_EQ(e->error, WH_ETLS) << wh_err_name(e->error);
  EXPECT_EQ(e->code, 1006);
  EXPECT_FALSE(e->data.empty()) << "the close event says why";
  EXPECT_EQ(hub_.rec().count(WH_EV_OPEN, c), 0u);
}

TEST_F(Tls, PlainClientOnATlsPortNeverOpens) {
  wh_client_options o = client_options();
  o.limits.handshake_timeout_ms = 1000;
  wh_conn* c = nullptr;
  std::string url = "ws://127.0.0.1:" + std::to_string(port_) + "/";
  ASSERT_EQ(wh_connect(hub_.get(), url.c_str(), &o, &c), 0);
  auto e = hub_.rec().wait_event(WH_EV_CLOSE, c, 5000);
  ASSERT_TRUE(e.has_value()) << hub_.rec().dump();
  EXPECT_NE(e->error, 0);
  EXPECT_EQ(hub_.rec().count(WH_EV_OPEN, c), 0u);
}

TEST(TlsOptions, ServerWithMissingKeyFileFailsWithETLS) {
  TestHub hub;
  wh_server_options o = server_options();
  o.tls.cert_file = "/nonexistent/cert.pem";
  o.tls.key_file = "/nonexistent/key.pem";
  int err = 0;
  EXPECT_EQ(hub.listen(o, &err), nullptr);
  EXPECT_EQ(err, WH_ETLS);
}
