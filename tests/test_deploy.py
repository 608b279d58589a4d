"""Deploy: binaries, libraries, models and pictures land with verified hashes, once."""

import shlex

from hil.kit.filehash import sha256_file

MIN_BYTES_FOR_THROUGHPUT = 1 << 20


def test_bundle_on_board(deployment, ssh, record_property, measure, model_limits):
    result = deployment.result
    record_property("deploy_sent_files", len(result.sent))
    record_property("deploy_bytes_sent", result.bytes_sent)
    record_property("deploy_seconds", round(result.seconds, 2))
    if result.bytes_sent >= MIN_BYTES_FOR_THROUGHPUT and result.seconds > 0:
        # a throughput needs something to send: a bundle already on the board measures nothing
        measure("deploy_throughput_mib_s", result.bytes_sent / result.seconds / 2**20, "MiB/s").within(model_limits)
    assert sorted(set(result.sent) | set(result.skipped)) == sorted(deployment.files), \
        "the deploy did not account for every file of the bundle"
    remote = {deployment.path(rel): rel for rel in deployment.files}
    out = ssh.run_check("sha256sum " + " ".join(shlex.quote(p) for p in remote), timeout=120)
    on_board = {line.split()[1]: line.split()[0] for line in out}
    wrong = [rel for path, rel in remote.items() if on_board.get(path) != sha256_file(deployment.files[rel])]
    assert not wrong, f"files on the board differ from the bundle: {wrong}"


def test_redeploy_sends_nothing(deployment, ssh):
    again = ssh.deploy(deployment.files, deployment.remote_dir, progress=False)
    assert again.sent == [] and again.bytes_sent == 0, f"a second deploy of the same bundle sent {again.sent}"
