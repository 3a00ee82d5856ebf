"""api.inspect_container fields docker-py users read; version(), info(), df()."""
import datetime

from common import client, name, cleanup, check, ok

c = client()
n = name("insp")
with cleanup(c, n):
    ctr = c.containers.run("busybox", ["sleep", "300"], name=n, detach=True, labels={"acc": "py"},
                           environment={"K": "v"}, hostname="py-host", working_dir="/tmp",
                           restart_policy={"Name": "on-failure", "MaximumRetryCount": 2})
    i = c.api.inspect_container(n)
    check(i["Id"] == ctr.id and i["Name"] == "/" + n, "Id/Name: %r %r" % (i["Id"], i["Name"]))
    st = i["State"]
    check(st["Status"] == "running" and st["Running"] is True and st["Pid"] > 0 and st["ExitCode"] == 0, "State %r" % st)
    for k in ("StartedAt", "FinishedAt"):
        check(isinstance(st[k], str) and "T" in st[k], "State.%s %r" % (k, st[k]))
    started = datetime.datetime.fromisoformat(st["StartedAt"][:19])
    check(abs((datetime.datetime.utcnow() - started).total_seconds()) < 120, "StartedAt %r" % st["StartedAt"])
    cfg = i["Config"]
    check(cfg["Image"] == "busybox" and cfg["Cmd"] == ["sleep", "300"], "Config %r" % cfg)
    check("K=v" in cfg["Env"] and cfg["Labels"] == {"acc": "py"} and cfg["Hostname"] == "py-host"
          and cfg["WorkingDir"] == "/tmp", "Config %r" % cfg)
    hc = i["HostConfig"]
    check(hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}, "RestartPolicy %r" % hc["RestartPolicy"])
    check(i["Image"].startswith("sha256:") and "Created" in i and isinstance(i["Mounts"], list), "Image/Created/Mounts")
    check(isinstance(i["NetworkSettings"], dict), "NetworkSettings")
    check(ctr.name == n and ctr.labels == {"acc": "py"} and ctr.image.tags and "busybox:latest" in ctr.image.tags,
          "Container model: %r %r %r" % (ctr.name, ctr.labels, ctr.image.tags))
    lst = c.containers.list(filters={"label": "acc=py"})
    check([x.id for x in lst] == [ctr.id], "list(filters=label): %r" % lst)
    top = ctr.top()
    check("Titles" in top and any("sleep" in " ".join(p) for p in top["Processes"]), "top %r" % top)
    stats = ctr.stats(stream=False)
    check("memory_stats" in stats and "cpu_stats" in stats, "stats keys %r" % list(stats))
v = c.version()
check(v.get("ApiVersion") and v.get("Os") == "linux", "version %r" % v)
info = c.info()
check(info.get("OSType") == "linux" and "Containers" in info, "info")
df = c.df()
check("Images" in df and "Containers" in df, "df %r" % list(df))
check(c.ping() is True, "ping")
ok("inspect")
