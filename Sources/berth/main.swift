// berth: Docker's verbs over the Docker Engine API on berthd's unix socket. No Foundation, no NIO:
// it is started for every container a script runs.
import Glibc

let berthVersion = "0.1.0"

let topVerbs = ["attach", "completion", "container", "cp", "create", "events", "exec", "history", "image", "images",
                "info", "inspect", "kill", "load", "logs", "pause", "port", "ps", "pull", "push", "rename", "restart",
                "rm", "rmi", "run", "save", "start", "stats", "stop", "system", "tag", "top", "unpause", "version", "wait"]

let mainUsage = """

Usage:  berth [OPTIONS] COMMAND

A container engine with Docker's verbs, served by berthd

Common Commands:
  run         Create and run a new container from an image
  exec        Execute a command in a running container
  ps          List containers
  pull        Download an image from a registry
  push        Upload an image to a registry
  images      List images
  version     Show the berth version information
  info        Display system-wide information

Management Commands:
  container   Manage containers
  image       Manage images
  system      Manage berth

Commands:
  attach      Attach local standard input, output, and error streams to a running container
  completion  Generate the autocompletion script for the specified shell
  cp          Copy files/folders between a container and the local filesystem
  create      Create a new container
  events      Get real time events from the server
  history     Show the history of an image
  inspect     Return low-level information on berth objects
  kill        Kill one or more running containers
  load        Load an image from a tar archive or STDIN
  logs        Fetch the logs of a container
  pause       Pause all processes within one or more containers
  port        List port mappings or a specific mapping for the container
  rename      Rename a container
  restart     Restart one or more containers
  rm          Remove one or more containers
  rmi         Remove one or more images
  save        Save one or more images to a tar archive (streamed to STDOUT by default)
  start       Start one or more stopped containers
  stats       Display a live stream of container(s) resource usage statistics
  stop        Stop one or more running containers
  tag         Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
  top         Display the running processes of a container
  unpause     Unpause all processes within one or more containers
  wait        Block until one or more containers stop, then print their exit codes

Global Options:
  -D, --debug              Enable debug mode
  -H, --host string        Daemon socket to connect to (default unix:///run/berth/berth.sock; env BERTH_HOST)
  -l, --log-level string   Set the logging level ("debug", "info", "warn", "error", "fatal") (default "info")
  -v, --version            Print version information and quit

Run 'berth COMMAND --help' for more information on a command.

"""

/// `container X`, `image X`, `system X` → the verb that does it (and a forced inspect type).
func resolveVerb(_ args: [String]) -> (String, [String], String?)? {
    guard let first = args.first else { return nil }
    let rest = Array(args.dropFirst())
    switch first {
    case "container":
        guard let sub = rest.first else { return ("container", [], nil) }
        let tail = Array(rest.dropFirst())
        switch sub {
        case "ls", "list", "ps": return ("ps", tail, nil)
        case "inspect": return ("inspect", tail, "container")
        case "prune": return ("container prune", tail, nil)
        default: return (sub, tail, nil)
        }
    case "image":
        guard let sub = rest.first else { return ("image", [], nil) }
        let tail = Array(rest.dropFirst())
        switch sub {
        case "ls", "list": return ("images", tail, nil)
        case "rm", "remove": return ("rmi", tail, nil)
        case "inspect": return ("inspect", tail, "image")
        case "prune": return ("image prune", tail, nil)
        default: return (sub, tail, nil)
        }
    case "system":
        guard let sub = rest.first else { return ("system", [], nil) }
        let tail = Array(rest.dropFirst())
        switch sub {
        case "df": return ("system df", tail, nil)
        case "prune": return ("system prune", tail, nil)
        case "info": return ("info", tail, nil)
        case "events": return ("events", tail, nil)
        default: return ("system " + sub, tail, nil)
        }
    case "remove": return ("rm", rest, nil)
    default: return (first, rest, nil)
    }
}

func dispatch(_ verb: String, _ args: [String], forcedType: String?, host: String?) throws -> Int32 {
    if verb == "completion" { return try cmdCompletion(args) }
    if ["container", "image", "system"].contains(verb) {
        writeOut("\nUsage:  berth \(verb) COMMAND\n\nManage \(verb == "system" ? "berth" : verb + "s")\n\n"
            + "Run 'berth \(verb) COMMAND --help' for more information on a command.\n")
        return 0
    }
    guard helps[verb] != nil else {
        writeErr("berth: unknown command: berth \(verb)\n\nRun 'berth --help' for more information\n")
        return 1
    }
    // --help needs no daemon
    do {
        _ = try parseFlags(verb, args, interspersed: !["run", "create", "exec", "top"].contains(verb))
    } catch is HelpRequested { throw HelpRequested() } catch {}
    let app = App(client: try Client(host: host))
    switch verb {
    case "run": return try cmdRun(app, args)
    case "create": return try cmdCreate(app, args)
    case "start": return try cmdStart(app, args)
    case "stop": return try cmdStop(app, args)
    case "restart": return try cmdStop(app, args, verb: "restart")
    case "kill": return try cmdKill(app, args)
    case "rm": return try cmdRm(app, args)
    case "pause", "unpause": return try cmdSimple(app, args, verb: verb)
    case "rename": return try cmdRename(app, args)
    case "wait": return try cmdWait(app, args)
    case "top": return try cmdTop(app, args)
    case "port": return try cmdPort(app, args)
    case "logs": return try cmdLogs(app, args)
    case "attach": return try cmdAttach(app, args)
    case "exec": return try cmdExec(app, args)
    case "ps": return try cmdPs(app, args)
    case "inspect": return try cmdInspect(app, args, type: forcedType)
    case "images": return try cmdImages(app, args)
    case "history": return try cmdHistory(app, args)
    case "pull": return try cmdPull(app, args)
    case "push": return try cmdPush(app, args)
    case "rmi": return try cmdRmi(app, args)
    case "tag": return try cmdTag(app, args)
    case "save": return try cmdSave(app, args)
    case "load": return try cmdLoad(app, args)
    case "info": return try cmdInfo(app, args)
    case "version": return try cmdVersion(app, args)
    case "events": return try cmdEvents(app, args)
    case "stats": return try cmdStats(app, args)
    case "cp": return try cmdCp(app, args)
    case "system df": return try cmdSystemDf(app, args)
    case "system prune": return try cmdSystemPrune(app, args)
    case "container prune": return try cmdContainerPrune(app, args)
    case "image prune": return try cmdImagePrune(app, args)
    default:
        writeErr("berth: '\(verb)' is not a berth command.\nSee 'berth --help'\n")
        return 1
    }
}

func main() -> Int32 {
    signal(SIGPIPE, SIG_IGN)
    var args = Array(CommandLine.arguments.dropFirst())
    var host: String?
    // global options, up to the verb
    while let a = args.first, a.hasPrefix("-") {
        args.removeFirst()
        switch a {
        case "-H", "--host":
            guard let v = args.first else { writeErr("flag needs an argument: \(a)\n"); return 125 }
            host = v
            args.removeFirst()
        case _ where a.hasPrefix("--host="): host = String(a.dropFirst(7))
        case _ where a.hasPrefix("-H") && a.count > 2: host = String(a.dropFirst(2))
        case "-v", "--version":
            writeOut("berth version \(berthVersion), build unknown\n")
            return 0
        case "-h", "--help":
            writeOut(mainUsage)
            return 0
        case "-D", "--debug", "--tls", "--tlsverify": break
        case "-l", "--log-level", "--config", "-c", "--context", "--tlscacert", "--tlscert", "--tlskey":
            if !args.isEmpty { args.removeFirst() }
        case _ where a.contains("="): break
        default:
            writeErr("unknown flag: \(a)\nSee 'berth --help'.\n")
            return 125
        }
    }
    guard let (verb, rest, forced) = resolveVerb(args) else {
        writeOut(mainUsage)
        return 0
    }
    do {
        return try dispatch(verb, rest, forcedType: forced, host: host)
    } catch is HelpRequested {
        writeOut(helps[verb]?.text ?? mainUsage)
        return 0
    } catch let e as UsageError {
        writeErr("\(e.message)\n\nUsage:  \(helps[verb]?.usage ?? "berth \(verb)")\n\nRun 'berth \(verb) --help' for more information\n")
        return 125
    } catch let e as CLIError {
        if !e.message.isEmpty { writeErr(e.message + "\n") }
        return e.code
    } catch {
        writeErr(errorText(error) + "\n")
        return 1
    }
}

exit(main())
