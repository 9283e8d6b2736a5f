from tests.support.daemon import Wizd


def test_status_over_real_socket(wizd: Wizd) -> None:
    status = wizd.call("daemon.status")
    assert status["socket"] == str(wizd.socket)
    assert set(status["queue"]) >= {"waiting", "active", "delayed", "failed", "completed"}
