// dwcp-gateway's options: the command line and --config files.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "control/gateway.h"

namespace dwcp::control {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kCreds = {"--cert", "/c.pem", "--key", "/c.key", "--ca", "/ca.pem", "--peer-name", "b"};

std::string parse(std::vector<std::string> args, GatewayOptions *o)
{
	bool help = false;
	return parse_options(args, o, &help);
}

std::vector<std::string> sender(std::vector<std::string> extra = {})
{
	std::vector<std::string> a = {"--ip", "10.0.0.1", "--peer", "10.0.0.2", "--send", "/x.img"};
	a.insert(a.end(), extra.begin(), extra.end());
	return a;
}

std::vector<std::string> with_creds(std::vector<std::string> a)
{
	a.insert(a.end(), kCreds.begin(), kCreds.end());
	return a;
}

fs::path write(const std::string &name, const std::string &text)
{
	fs::path p = fs::temp_directory_path() / (name + "-" + std::to_string(getpid()));
	std::ofstream(p) << text;
	return p;
}

TEST(Options, SecurityIsOnByDefaultAndNeedsCredentials)
{
	GatewayOptions o;
	std::string e = parse(sender(), &o);
	EXPECT_NE(e.find("--cert, --key, --ca, --peer-name"), std::string::npos) << e;
	GatewayOptions o2;
	ASSERT_EQ(parse(with_creds(sender()), &o2), "");
	EXPECT_TRUE(o2.crypto);
	EXPECT_EQ(o2.tls.cert_file, "/c.pem");
	EXPECT_EQ(o2.tls.peer_name, "b");
	GatewayOptions o3;
	ASSERT_EQ(parse(sender({"--crypto", "off"}), &o3), "");
	EXPECT_FALSE(o3.crypto);
	GatewayOptions o4;
	EXPECT_NE(parse(sender({"--crypto", "maybe"}), &o4).find("'maybe' is not on or off"), std::string::npos);
}

TEST(Options, KeyUpdateBounds)
{
	GatewayOptions o;
	ASSERT_EQ(parse(with_creds(sender({"--key-update-packets", "5000", "--key-update-s", "60"})), &o), "");
	EXPECT_EQ(o.key_update_packets, 5000u);
	EXPECT_EQ(o.key_update_s, 60);
	GatewayOptions o2;
	EXPECT_NE(parse(with_creds(sender({"--key-update-packets", "9000000"})), &o2).find("AES-GCM's limit"),
		  std::string::npos);
	GatewayOptions o3;
	EXPECT_NE(parse(with_creds(sender({"--key-update-s", "100000"})), &o3).find("at least daily"), std::string::npos);
}

TEST(Options, ConfigFileWithCommentsAndCommandLineOverride)
{
	fs::path cfg = write("dwcp-opt", "# site A\n"
					  "cert /etc/dwcp/a.pem\n"
					  "key /etc/dwcp/a.key   # unencrypted, mode 0600\n"
					  "ca /etc/dwcp/ca.pem\n"
					  "peer-name site-b\n"
					  "\n"
					  "link-mbit 1000\n"
					  "key-update-s 600\n");
	GatewayOptions o;
	ASSERT_EQ(parse(sender({"--config", cfg.string(), "--link-mbit", "500"}), &o), "");
	EXPECT_EQ(o.tls.cert_file, "/etc/dwcp/a.pem");
	EXPECT_EQ(o.tls.key_file, "/etc/dwcp/a.key");
	EXPECT_EQ(o.tls.peer_name, "site-b");
	EXPECT_EQ(o.key_update_s, 600);
	EXPECT_EQ(o.link_mbit, 500u); // the command line after --config wins
	fs::remove(cfg);
}

TEST(Options, ConfigErrorsNameTheFileAndLine)
{
	fs::path cfg = write("dwcp-bad", "cert /a.pem\nno-such-thing 3\n");
	GatewayOptions o;
	std::string e = parse(with_creds(sender({"--config", cfg.string()})), &o);
	EXPECT_EQ(e, "--config " + cfg.string() + " line 2: unknown option 'no-such-thing'");
	fs::remove(cfg);

	cfg = write("dwcp-bad2", "link-mbit fast\n");
	e = parse(with_creds(sender({"--config", cfg.string()})), &o);
	EXPECT_EQ(e, "--config " + cfg.string() + " line 1: --link-mbit: 'fast' is not a rate in 1..1000000 Mbit/s");
	fs::remove(cfg);

	cfg = write("dwcp-bad3", "cert a b\n");
	e = parse(with_creds(sender({"--config", cfg.string()})), &o);
	EXPECT_NE(e.find("line 1: 'cert' takes at most one value, got 2"), std::string::npos) << e;
	fs::remove(cfg);

	cfg = write("dwcp-bad4", "config /etc/other\n");
	e = parse(with_creds(sender({"--config", cfg.string()})), &o);
	EXPECT_NE(e.find("cannot name another config file"), std::string::npos) << e;
	fs::remove(cfg);

	e = parse(with_creds(sender({"--config", "/nonexistent/dwcp.conf"})), &o);
	EXPECT_EQ(e, "--config /nonexistent/dwcp.conf: cannot read it: No such file or directory");
}

} // namespace
} // namespace dwcp::control
