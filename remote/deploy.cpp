// SFTP upload + remote verification + atomic publish of a content-addressed bundle.
#include "deploy.h"

#include <chrono>
#include <random>

#include "error.h"
#include "sftp_client.h"
#include "shell_quote.h"

namespace moe::remote {

namespace {

// Shell snippet: exits 0 when directory `dir` holds exactly the bundle named `hash`.
std::string verify_snippet(const std::string& dir, const std::string& hash) {
  return "cd -- " + shell_quote(dir) +
         " && sha256sum --check --strict --quiet .manifest"
         " && [ \"$(sha256sum < .manifest | cut -c1-64)\" = " + shell_quote(hash) + " ]"
         " && while IFS= read -r l; do m=${l%% *}; p=${l#* };"
         " [ \"$(stat -c %a -- \"$p\")\" = \"$m\" ] || { echo \"mode of $p is not $m\" >&2; exit 1; }; done < .modes";
}

std::string random_hex(int n) {
  std::random_device rd;
  std::string s;
  for (int i = 0; i < n; ++i) s += "0123456789abcdef"[rd() % 16];
  return s;
}

}  // namespace

std::string remote_bundle_dir(SshSession& session, const std::string& hash) {
  return session.home() + "/.cache/moe-studio/" + hash;
}

bool bundle_present(SshSession& session, const Bundle& bundle) {
  const std::string dir = remote_bundle_dir(session, bundle.hash);
  const std::string cmd = "if [ -f " + shell_quote(dir + "/.complete") + " ]; then ( " +
                          verify_snippet(dir, bundle.hash) + " ) >/dev/null 2>&1 && exit 0; fi; rm -rf -- " +
                          shell_quote(dir) + "; exit 1";
  ExecResult r = session.run(cmd);
  return r.exit_status == 0;
}

DeployResult deploy_bundle(SshSession& session, const Bundle& bundle) {
  const auto t0 = std::chrono::steady_clock::now();
  DeployResult res;
  res.remote_dir = remote_bundle_dir(session, bundle.hash);
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  if (bundle_present(session, bundle)) {
    res.seconds = elapsed();
    return res;
  }
  const std::string cache = session.home() + "/.cache/moe-studio";
  const std::string tmp = cache + "/.tmp-" + bundle.hash.substr(0, 16) + "-" + random_hex(8);
  {
    SftpClient sftp(session);
    sftp.mkdir_p(tmp, 0755);
    for (const BundleFile& f : bundle.files) {
      const std::string target = tmp + "/" + f.path;
      if (size_t slash = f.path.rfind('/'); slash != std::string::npos)
        sftp.mkdir_p(tmp + "/" + f.path.substr(0, slash), 0755);
      res.bytes += sftp.upload_file(bundle.dir / f.path, target, f.executable ? 0755 : 0644);
    }
    sftp.write_file(tmp + "/.modes", bundle.modes, 0644);
    sftp.write_file(tmp + "/.manifest", bundle.manifest, 0644);
    res.bytes += bundle.modes.size() + bundle.manifest.size();
  }
  // Verify on the node, then publish atomically; a concurrent deploy that won the rename is fine.
  const std::string final_dir = res.remote_dir;
  const std::string cmd = "( " + verify_snippet(tmp, bundle.hash) + " ) || { rm -rf -- " + shell_quote(tmp) +
                          "; echo 'hash verification failed' >&2; exit 2; }; : > " + shell_quote(tmp + "/.complete") +
                          " && { mv -T -- " + shell_quote(tmp) + " " + shell_quote(final_dir) +
                          " 2>/dev/null || rm -rf -- " + shell_quote(tmp) + "; } && [ -f " +
                          shell_quote(final_dir + "/.complete") + " ]";
  ExecResult r = session.run(cmd);
  if (r.exit_status != 0)
    throw moe::Error(session.name() + ": deploy of bundle " + bundle.hash.substr(0, 12) + " to " + final_dir +
                     " failed: " + r.err + r.out);
  res.uploaded = true;
  res.seconds = elapsed();
  return res;
}

}  // namespace moe::remote
