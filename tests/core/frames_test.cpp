// frames_test.cpp — the server's data framing (RFC 6455 section 5), seen from a
// raw client that sends exactly the bytes each test needs: echo, fragments,
// control frames, and every protocol error with its close code.
#include <string>
#include <thread>

#include "test_util.hpp"

using namespace wht;

namespace {

class Frames : public ::testing::Test {
 protected:
  void SetUp() override { start(server_options()); }

  void start(wh_server_options o) {
    hub_ = std::make_unique<TestHub>();
    hub_->set_handler(echo_handler);
    server_ = hub_->listen(o);
    ASSERT_NE(server_, nullptr);
    port_ = wh_server_port(server_);
    ASSERT_TRUE(c_.open(port_));
    conn_ = hub_->rec().wait_server_conn(c_.local_port());
    ASSERT_NE(conn_, nullptr);
  }

  // Reads the next data frame and checks it is one whole unmasked message.
  void expect_echo(uint8_t opcode, const std::string& payload) {
    auto f = c_.read_data_frame();
    ASSERT_TRUE(f.has_value()) << "no echo";
    EXPECT_EQ(f->opcode, opcode);
    EXPECT_TRUE(f->fin);
    EXPECT_EQ(f->rsv, 0);
    EXPECT_FALSE(f->masked) << "a server must not mask";
    EXPECT_EQ(f->payload.size(), payload.size());
    EXPECT_TRUE(f->payload == payload);
  }

  // The app-side WH_EV_CLOSE of the server conn.
  Event close_event() {
    auto e = hub_->rec().wait_event(WH_EV_CLOSE, conn_);
    EXPECT_TRUE(e.has_value()) << "no WH_EV_CLOSE\n" << hub_->rec().dump();
    return e.value_or(Event{});
  }

  void expect_protocol_error(int code, int error) {
    expect_failed_with(c_, code);
    Event e = close_event();
    EXPECT_EQ(e.code, code) << hub_->rec().dump();
    EXPECT_EQ(e.error, error) << wh_err_name(e.error);
    EXPECT_EQ(hub_->rec().count(WH_EV_MESSAGE, conn_), 0u) << "no message may be delivered";
  }

  std::unique_ptr<TestHub> hub_;
  wh_server* server_ = nullptr;
  int port_ = 0;
  RawClient c_;
  wh_conn* conn_ = nullptr;
};

class FramesWithSmallMax : public Frames {
 protected:
  void SetUp() override {
    wh_server_options o = server_options();
    o.limits.max_message_size = 1024;
    start(o);
  }
};

class FramesBareClose : public Frames {
 protected:
  void SetUp() override {
    wh_server_options o = server_options();
    o.flags |= WH_SERVER_BARE_CLOSE;
    start(o);
  }
};

}  // namespace

// --------------------------------------------------------------- data flow
TEST_F(Frames, EchoesTextMessage) {
  ASSERT_TRUE(c_.send_text("hello"));
  expect_echo(OP_TEXT, "hello");
  auto m = hub_->rec().wait_event(WH_EV_MESSAGE, conn_);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->flags & (WH_TEXT | WH_BINARY), WH_TEXT);
  EXPECT_EQ(m->flags & WH_COMPRESSED, 0);
  EXPECT_EQ(m->data, "hello");
  EXPECT_EQ(m->server, server_);
}

TEST_F(Frames, EchoesBinaryMessagesOfEveryLengthForm) {
  for (size_t n : {size_t(0), size_t(1), size_t(125), size_t(126), size_t(65535), size_t(65536),
                   size_t(200000)}) {
    std::string p = random_bytes(n, static_cast<uint32_t>(n));
    ASSERT_TRUE(c_.send_frame(OP_BINARY, p));
    expect_echo(OP_BINARY, p);
  }
  auto msgs = hub_->rec().events(WH_EV_MESSAGE, conn_);
  ASSERT_EQ(msgs.size(), 7u);
  for (auto& m : msgs) EXPECT_EQ(m.flags & (WH_TEXT | WH_BINARY), WH_BINARY);
}

TEST_F(Frames, AcceptsNonMinimalLengthEncoding) {
  ASSERT_TRUE(c_.send_frame(OP_TEXT, "abc", FrameOpts().form(64)));
  expect_echo(OP_TEXT, "abc");
  ASSERT_TRUE(c_.send_frame(OP_TEXT, "xyz", FrameOpts().form(16)));
  expect_echo(OP_TEXT, "xyz");
}

TEST_F(Frames, EchoesEmptyTextMessage) {
  ASSERT_TRUE(c_.send_text(""));
  expect_echo(OP_TEXT, "");
}

TEST_F(Frames, ValidMultibyteUtf8IsAccepted) {
  std::string s = "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80";  // é € 😀
  ASSERT_TRUE(c_.send_text(s));
  expect_echo(OP_TEXT, s);
}

TEST_F(Frames, FragmentedMessageIsReassembled) {
  ASSERT_TRUE(c_.send_frame(OP_TEXT, "Hel", more()));
  ASSERT_TRUE(c_.send_frame(OP_CONT, "lo", more()));
  ASSERT_TRUE(c_.send_frame(OP_CONT, "", more()));
  ASSERT_TRUE(c_.send_frame(OP_CONT, " world", FrameOpts()));
  expect_echo(OP_TEXT, "Hello world");
  EXPECT_EQ(hub_->rec().count(WH_EV_MESSAGE, conn_), 1u);
}

TEST_F(Frames, Utf8SequenceSplitAcrossFragmentsIsAccepted) {
  ASSERT_TRUE(c_.send_frame(OP_TEXT, "\xE2\x82", more()));
  ASSERT_TRUE(c_.send_frame(OP_CONT, "\xAC", FrameOpts()));
  expect_echo(OP_TEXT, "\xE2\x82\xAC");
}

TEST_F(Frames, PingIsAnsweredWithPongCarryingThePayload) {
  ASSERT_TRUE(c_.send_frame(OP_PING, "are you there"));
  auto f = c_.read_frame();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->opcode, OP_PONG);
  EXPECT_TRUE(f->fin);
  EXPECT_FALSE(f->masked);
  EXPECT_EQ(f->payload, "are you there");
  auto p = hub_->rec().wait_event(WH_EV_PING, conn_);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->data, "are you there");
}

TEST_F(Frames, MaximalPingIsAnswered) {
  std::string payload(125, 'p');
  ASSERT_TRUE(c_.send_frame(OP_PING, payload));
  auto f = c_.read_frame();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->opcode, OP_PONG);
  EXPECT_EQ(f->payload, payload);
}

TEST_F(Frames, UnsolicitedPongIsReportedAndIgnored) {
  ASSERT_TRUE(c_.send_frame(OP_PONG, "tick"));
  auto p = hub_->rec().wait_event(WH_EV_PONG, conn_);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->data, "tick");
  ASSERT_TRUE(c_.send_text("after"));
  expect_echo(OP_TEXT, "after");
}

TEST_F(Frames, ControlFrameBetweenFragmentsIsHandled) {
  ASSERT_TRUE(c_.send_frame(OP_TEXT, "frag", more()));
  ASSERT_TRUE(c_.send_frame(OP_PING, "mid"));
  ASSERT_TRUE(c_.send_frame(OP_CONT, "ment", FrameOpts()));
  auto pong = c_.read_frame();
  ASSERT_TRUE(pong.has_value());
  EXPECT_EQ(pong->opcode, OP_PONG);
  EXPECT_EQ(pong->payload, "mid");
  expect_echo(OP_TEXT, "fragment");
}

TEST_F(Frames, ServerPingArrivesAndPongIsReported) {
  ASSERT_EQ(wh_conn_ping(conn_, "hb", 2), 0);
  auto f = c_.read_frame();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->opcode, OP_PING);
  EXPECT_EQ(f->payload, "hb");
  ASSERT_TRUE(c_.send_frame(OP_PONG, f->payload));
  auto p = hub_->rec().wait_event(WH_EV_PONG, conn_);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->data, "hb");
}

TEST_F(Frames, UnsolicitedServerPongIsSent) {
  ASSERT_EQ(wh_conn_pong(conn_, "u", 1), 0);
  auto f = c_.read_frame();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->opcode, OP_PONG);
  EXPECT_EQ(f->payload, "u");
}

TEST_F(Frames, SendWithMoreProducesFragments) {
  ASSERT_GE(wh_conn_send(conn_, "one ", 4, WH_TEXT | WH_MORE), 0);
  ASSERT_GE(wh_conn_send(conn_, "two ", 4, WH_TEXT | WH_MORE), 0);
  ASSERT_GE(wh_conn_send(conn_, "three", 5, WH_TEXT), 0);
  auto a = c_.read_frame(), b = c_.read_frame(), c = c_.read_frame();
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(a->opcode, OP_TEXT);
  EXPECT_FALSE(a->fin);
  EXPECT_EQ(a->payload, "one ");
  EXPECT_EQ(b->opcode, OP_CONT);
  EXPECT_FALSE(b->fin);
  EXPECT_EQ(b->payload, "two ");
  EXPECT_EQ(c->opcode, OP_CONT);
  EXPECT_TRUE(c->fin);
  EXPECT_EQ(c->payload, "three");
}

TEST_F(Frames, PauseStopsMessagesUntilResume) {
  ASSERT_EQ(wh_conn_pause(conn_), 0);
  ASSERT_TRUE(c_.send_text("held"));
  EXPECT_FALSE(hub_->rec().wait_count(WH_EV_MESSAGE, 1, conn_, 300)) << "paused conn delivered a message";
  ASSERT_EQ(wh_conn_resume(conn_), 0);
  EXPECT_TRUE(hub_->rec().wait_count(WH_EV_MESSAGE, 1, conn_));
  expect_echo(OP_TEXT, "held");
}

// --------------------------------------------------------- protocol errors
TEST_F(Frames, UnmaskedClientFrameFailsWith1002) {
  ASSERT_TRUE(c_.send_frame(OP_TEXT, "naked", FrameOpts().unmasked()));
  expect_protocol_error(1002, WH_EPROTO);
}

TEST_F(Frames, ReservedDataOpcodeFailsWith1002) {
  ASSERT_TRUE(c_.send_frame(0x3, "x"));
  expect_protocol_error(1002, WH_EPROTO);
}

TEST_F(Frames, ReservedControlOpcodeFailsWith1002) {
  ASSERT_TRUE(c_.send_frame(0xB, "x"));
  expect_protocol_error(1002, WH_EPROTO);
}

TEST_F(Frames, Rsv1WithoutDeflateFailsWith1002) {
  ASSERT_TRUE(c_.send_frame(OP_TEXT, "x", FrameOpts().with_rsv(RSV1)));
  expect_protocol_error(1002, WH_EPROTO);
}

TEST_F(Frames, Rsv2FailsWith1002) {
  ASSERT_TRUE(c_.send_frame(OP_BINARY, "x", FrameOpts().with_rsv(RSV2)));
  expect_protocol_error(1002, WH_EPROTO);
}

TEST_F(Frames, Rsv3FailsWith1002) {
  ASSERT_TRUE(c_.send_frame(OP_BINARY, "x", FrameOpts().with_rsv(RSV3)));
  expect_protocol_error(1002, WH_EPROTO);
}

TEST_F(Frames, ControlFrameAbove125BytesFailsWith1002) {
  ASSERT_TRUE(c_.send_frame(OP_PING, std::string(126, 'x')));
  expect_protocol_error(1002, WH_EPROTO);
}

TEST_F(Frames, FragmentedControlFrameFailsWith1002) {
  ASSERT_TRUE(c_.send_frame(OP_PING, "x", more()));
  expect_protocol_error(1002, WH_EPROTO);
}

TEST_F(Frames, ContinuationWithoutStartFailsWith1002) {
  ASSERT_TRUE(c_.send_frame(OP_CONT, "orphan"));
  expect_protocol_error(1002, WH_EPROTO);
}

TEST_F(Frames, NewDataFrameInsideFragmentedMessageFailsWith1002) {
  ASSERT_TRUE(c_.send_frame(OP_TEXT, "a", more()));
  ASSERT_TRUE(c_.send_frame(OP_TEXT, "b"));
  expect_protocol_error(1002, WH_EPROTO);
}

TEST_F(Frames, LengthWithMostSignificantBitSetFailsWith1002) {
  // 64-bit length form with the top bit set (RFC 6455 5.2: MUST be 0).
  std::string frame;
  frame.push_back(static_cast<char>(0x82));
  frame.push_back(static_cast<char>(0x80 | 127));
  frame.append("\x80\x00\x00\x00\x00\x00\x00\x01", 8);
  frame.append("\x01\x02\x03\x04", 4);  // mask key
  ASSERT_TRUE(c_.send_raw(frame));
  expect_protocol_error(1002, WH_EPROTO);
}

TEST_F(Frames, InvalidUtf8TextFailsWith1007) {
  ASSERT_TRUE(c_.send_text("ok \xFF"));
  expect_protocol_error(1007, WH_EUTF8);
}

TEST_F(Frames, OverlongUtf8FailsWith1007) {
  ASSERT_TRUE(c_.send_text("\xC0\xAF"));
  expect_protocol_error(1007, WH_EUTF8);
}

TEST_F(Frames, Utf16SurrogateInUtf8FailsWith1007) {
  ASSERT_TRUE(c_.send_text("\xED\xA0\x80"));
  expect_protocol_error(1007, WH_EUTF8);
}

TEST_F(Frames, CodePointAboveU10FFFFFailsWith1007) {
  ASSERT_TRUE(c_.send_text("\xF4\x90\x80\x80"));
  expect_protocol_error(1007, WH_EUTF8);
}

TEST_F(Frames, InvalidUtf8InFirstFragmentFailsBeforeTheFinalFragment) {
  // Fail fast: the final fragment never comes.
  ASSERT_TRUE(c_.send_frame(OP_TEXT, "abc\xFF", more()));
  expect_protocol_error(1007, WH_EUTF8);
}

TEST_F(Frames, InvalidUtf8AcrossFragmentsFailsBeforeTheFinalFragment) {
  // "\xE2\x82" is a valid prefix; 'A' cannot continue it.
  ASSERT_TRUE(c_.send_frame(OP_TEXT, "\xE2\x82", more()));
  ASSERT_TRUE(c_.send_frame(OP_CONT, "A", more()));
  expect_protocol_error(1007, WH_EUTF8);
}

TEST_F(Frames, TruncatedUtf8AtEndOfMessageFailsWith1007) {
  ASSERT_TRUE(c_.send_frame(OP_TEXT, "abc\xE2\x82", more()));
  ASSERT_TRUE(c_.send_frame(OP_CONT, "", FrameOpts()));
  expect_protocol_error(1007, WH_EUTF8);
}

TEST_F(Frames, InvalidUtf8InBinaryMessageIsFine) {
  ASSERT_TRUE(c_.send_frame(OP_BINARY, "\xFF\xFE"));
  expect_echo(OP_BINARY, "\xFF\xFE");
}

TEST_F(FramesWithSmallMax, MessageAboveMaxMessageSizeFailsWith1009) {
  ASSERT_TRUE(c_.send_frame(OP_BINARY, std::string(1024, 'a')));
  expect_echo(OP_BINARY, std::string(1024, 'a'));  // exactly the limit is fine
  ASSERT_TRUE(c_.send_frame(OP_BINARY, std::string(1025, 'a')));
  expect_failed_with(c_, 1009);
  Event e = close_event();
  EXPECT_EQ(e.code, 1009);
  EXPECT_EQ(e.error, WH_ETOOBIG) << "the application's WH_EV_CLOSE must say why: " << wh_err_name(e.error);
}

TEST_F(FramesWithSmallMax, FragmentsAboveMaxFailWith1009BeforeTheFinalFragment) {
  ASSERT_TRUE(c_.send_frame(OP_TEXT, std::string(600, 'a'), more()));
  ASSERT_TRUE(c_.send_frame(OP_CONT, std::string(600, 'b'), more()));
  expect_failed_with(c_, 1009);
  Event e = close_event();
  EXPECT_EQ(e.code, 1009);
  EXPECT_EQ(e.error, WH_ETOOBIG) << wh_err_name(e.error);
}

TEST_F(FramesWithSmallMax, HugeAnnouncedLengthFailsWith1009WithoutReadingPayload) {
  ASSERT_TRUE(c_.send_frame(OP_BINARY, "", FrameOpts().announce(int64_t(1) << 40)));
  expect_failed_with(c_, 1009);
  Event e = close_event();
  EXPECT_EQ(e.error, WH_ETOOBIG) << wh_err_name(e.error);
}

// ------------------------------------------------------------------- close
TEST_F(Frames, CloseIsEchoedWithTheSameCodeAndReason) {
  ASSERT_TRUE(c_.send_close(1000, "bye"));
  auto f = c_.read_until_close();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->close_code(), 1000);
  EXPECT_EQ(f->close_reason(), "bye") << "the initiator learns its reason back, as with ws";
  EXPECT_TRUE(c_.wait_eof()) << "the server closes TCP after the close handshake";
  Event e = close_event();
  EXPECT_EQ(e.code, 1000);
  EXPECT_EQ(e.data, "bye");
  EXPECT_EQ(e.error, 0) << "a completed close handshake is clean: " << wh_err_name(e.error);
}

TEST_F(Frames, ApplicationCloseCodeIsEchoed) {
  ASSERT_TRUE(c_.send_close(4321, ""));
  auto f = c_.read_until_close();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->close_code(), 4321);
  EXPECT_TRUE(c_.wait_eof());
  Event e = close_event();
  EXPECT_EQ(e.code, 4321);
  EXPECT_EQ(e.error, 0);
}

TEST_F(Frames, EmptyCloseIsReportedAs1005AndAnswered) {
  ASSERT_TRUE(c_.send_frame(OP_CLOSE, ""));
  auto f = c_.read_until_close();
  ASSERT_TRUE(f.has_value());
  EXPECT_TRUE(f->close_code() == 1005 || f->close_code() == 1000) << f->close_code();
  EXPECT_TRUE(c_.wait_eof());
  Event e = close_event();
  EXPECT_EQ(e.code, 1005);
  EXPECT_EQ(e.error, 0);
}

TEST_F(Frames, CloseWithOneBytePayloadFailsWith1002) {
  ASSERT_TRUE(c_.send_frame(OP_CLOSE, "\x03"));
  expect_failed_with(c_, 1002);
}

TEST_F(Frames, CloseWithReservedCodesFailsWith1002) {
  // Each code on a fresh connection.
  for (int code : {999, 1004, 1005, 1006, 1015, 1016, 2999, 5000}) {
    SCOPED_TRACE(code);
    RawClient c;
    ASSERT_TRUE(c.open(port_));
    ASSERT_TRUE(c.send_close(code));
    expect_failed_with(c, 1002);
  }
}

TEST_F(Frames, CloseReasonWithInvalidUtf8FailsWith1007) {
  ASSERT_TRUE(c_.send_close(1000, "bad \xFF reason"));
  expect_failed_with(c_, 1007);
}

TEST_F(Frames, DataAfterCloseFrameIsIgnored) {
  ASSERT_TRUE(c_.send_close(1000));
  ASSERT_TRUE(c_.send_text("too late"));
  auto f = c_.read_until_close();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->close_code(), 1000);
  EXPECT_EQ(hub_->rec().count(WH_EV_MESSAGE, conn_), 0u);
}

TEST_F(Frames, ServerInitiatedCloseCompletesCleanly) {
  ASSERT_EQ(wh_conn_close(conn_, 4001, "done", 4), 0);
  auto f = c_.read_until_close();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->close_code(), 4001);
  EXPECT_EQ(f->close_reason(), "done");
  ASSERT_TRUE(c_.send_close(4001));
  EXPECT_TRUE(c_.wait_eof());
  Event e = close_event();
  EXPECT_EQ(e.code, 4001);
  EXPECT_EQ(e.error, 0) << wh_err_name(e.error);
}

TEST_F(Frames, CloseWithCodeZeroSendsEmptyCloseFrame) {
  ASSERT_EQ(wh_conn_close(conn_, 0, nullptr, 0), 0);
  auto f = c_.read_until_close();
  ASSERT_TRUE(f.has_value());
  EXPECT_TRUE(f->payload.empty());
}

TEST_F(Frames, DataQueuedBeforeCloseIsSentFirst) {
  ASSERT_GE(wh_conn_send(conn_, "last words", 10, WH_TEXT), 0);
  ASSERT_EQ(wh_conn_close(conn_, 1000, nullptr, 0), 0);
  auto f = c_.read_data_frame();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->payload, "last words");
  auto cl = c_.read_until_close();
  ASSERT_TRUE(cl.has_value());
  EXPECT_EQ(cl->close_code(), 1000);
}

TEST_F(Frames, TerminateDropsTcpAndReports1006) {
  ASSERT_EQ(wh_conn_terminate(conn_), 0);
  std::vector<Frame> frames;
  EXPECT_FALSE(c_.read_until_close(kTimeoutMs, &frames).has_value()) << "terminate sends no close frame";
  EXPECT_TRUE(c_.eof());
  Event e = close_event();
  EXPECT_EQ(e.code, 1006);
}

TEST_F(Frames, PeerVanishingWithoutCloseReports1006WithError) {
  c_.close();
  Event e = close_event();
  EXPECT_EQ(e.code, 1006);
  EXPECT_NE(e.error, 0) << "an abnormal closure is not clean";
}

TEST_F(Frames, EveryConnGetsExactlyOneCloseAndItIsLast) {
  ASSERT_TRUE(c_.send_text("x"));
  ASSERT_TRUE(c_.send_close(1000));
  ASSERT_TRUE(c_.read_until_close().has_value());
  c_.close();
  ASSERT_TRUE(hub_->rec().wait_event(WH_EV_CLOSE, conn_).has_value());
  EXPECT_FALSE(hub_->rec().wait_count(WH_EV_CLOSE, 2, conn_, 200));
  auto evs = hub_->rec().events(0, conn_);
  ASSERT_FALSE(evs.empty());
  EXPECT_EQ(evs.front().type, WH_EV_OPEN);
  EXPECT_EQ(evs.back().type, WH_EV_CLOSE);
}

// ------------------------------------------------------------ TCP framing
TEST_F(Frames, ManyFramesInOneWriteAreAllHandledInOrder) {
  std::string burst;
  for (int i = 0; i < 50; ++i) burst += encode_frame(OP_TEXT, "m" + std::to_string(i));
  ASSERT_TRUE(c_.send_raw(burst));
  for (int i = 0; i < 50; ++i) {
    auto f = c_.read_data_frame();
    ASSERT_TRUE(f.has_value()) << i;
    EXPECT_EQ(f->payload, "m" + std::to_string(i));
  }
}

TEST_F(Frames, FrameSentOneByteAtATimeIsReassembled) {
  std::string frame = encode_frame(OP_TEXT, std::string(300, 'z'));  // 16-bit length form
  for (char ch : frame) {
    ASSERT_TRUE(c_.send_raw(std::string_view(&ch, 1)));
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  expect_echo(OP_TEXT, std::string(300, 'z'));
}

TEST(FramesPipelined, FrameSentTogetherWithTheUpgradeRequestIsNotLost) {
  TestHub hub;
  hub.set_handler(echo_handler);
  wh_server* s = hub.listen(server_options());
  ASSERT_NE(s, nullptr);
  RawClient c;
  ASSERT_TRUE(c.connect(wh_server_port(s)));
  ASSERT_TRUE(c.send_raw(upgrade_request("/") + encode_frame(OP_TEXT, "early bird")));
  HttpResponse r = c.read_http_response();
  ASSERT_EQ(r.status, 101) << r.head;
  auto f = c.read_data_frame();
  ASSERT_TRUE(f.has_value()) << "bytes after the request head were dropped";
  EXPECT_EQ(f->payload, "early bird");
}

// WH_SERVER_BARE_CLOSE (ws's receiver): a violation closes with the code
// alone; the application still learns what it was.
TEST_F(FramesBareClose, AViolationClosesWithTheCodeAloneAndTheApplicationLearnsWhich) {
  ASSERT_TRUE(c_.send_frame(3, "x"));
  std::vector<Frame> others;
  auto f = c_.read_until_close(kTimeoutMs, &others);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->close_code(), 1002);
  EXPECT_EQ(f->close_reason(), "") << "the code alone, as ws";
  c_.send_close(1002);
  EXPECT_TRUE(c_.wait_eof(kTimeoutMs)) << "server did not close the TCP connection";
  Event e = close_event();
  EXPECT_EQ(e.error, WH_EPROTO);
  EXPECT_EQ(e.data, "invalid opcode 3");
}

TEST_F(Frames, WithoutBareCloseTheCloseFrameNamesTheViolation) {
  ASSERT_TRUE(c_.send_frame(3, "x"));
  std::vector<Frame> others;
  auto f = c_.read_until_close(kTimeoutMs, &others);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->close_code(), 1002);
  EXPECT_EQ(f->close_reason(), "invalid opcode 3");
}
