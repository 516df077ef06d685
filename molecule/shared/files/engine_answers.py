"""What this host's engine says, as one JSON document: /images/json?all=1&shared-size=1, /system/df, each
container's inspect with its size, and the overlay mount options of each running container's root."""
import http.client
import json
import socket


class Connection(http.client.HTTPConnection):
    def __init__(self):
        super().__init__("localhost")

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect("/var/run/docker.sock")


def get(path):
    connection = Connection()
    connection.request("GET", path)
    return json.loads(connection.getresponse().read())


def root_mount(pid):
    with open("/proc/%d/mountinfo" % pid) as handle:
        for line in handle:
            fields = line.split()
            if fields[4] == "/" and " - overlay " in line:
                options = line.split(" - ", 1)[1].split()[2].split(",")
                found = dict(option.split("=", 1) for option in options if "=" in option)
                return {"lower_dirs": found["lowerdir"].split(":"), "upper_dir": found["upperdir"],
                        "work_dir": found["workdir"]}
    return None


containers = [get("/containers/%s/json?size=1" % c["Id"]) for c in get("/containers/json?all=1")]
print(json.dumps({
    "images": get("/images/json?all=1&shared-size=1"),
    "df": {"LayersSize": get("/system/df")["LayersSize"], "Images": len(get("/system/df")["Images"])},
    "containers": containers,
    "mounts": {c["Id"]: root_mount(c["State"]["Pid"]) for c in containers if c["State"]["Running"]},
}))
