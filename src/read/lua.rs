//! Loading a function library the way the servers do (feature `lua`): Redis 7.0+/Valkey compile the library's
//! Lua code and **run its top level** with a restricted API to collect its `redis.register_function(...)` calls,
//! and refuse the file when that fails. [`library_functions`] does the same in a sandbox of its own:
//!
//! - a fresh Lua 5.1 state per library, whose code sees only what the servers give it while loading: a read-only
//!   `redis` table (Valkey: `server` too) with `register_function`, `log`, the `LOG_*` levels and the version
//!   constants, and the string methods (`("x"):rep(3)`); any other global is "Script attempted to access
//!   nonexistent global variable", and writing a global or a field of `redis` is "Attempt to modify a readonly
//!   table", as on the servers;
//! - `register_function` in both forms (`(name, callback)` and `{function_name=, callback=, flags=,
//!   description=}`), with the servers' argument checks and messages (flags `no-writes`, `allow-oom`,
//!   `allow-stale`, `no-cluster`, `allow-cross-slot-keys`, case-insensitive), function names of letters, digits
//!   and `_`, no name twice in one library, and at least one function;
//! - `redis.log` checks its arguments as Redis does; Valkey 9.1 aborts (assertion `rctx`) when a library calls it
//!   while loading, so for a Valkey file it refuses.
//!
//! A server loading an RDB runs the top level with no time limit and no memory limit of its own (an endless loop
//! hangs it for good). rdbkit bounds both, so hostile code cannot hang it or eat memory: at most
//! [`LOAD_INSTRUCTIONS`] Lua instructions and [`LOAD_SECONDS`] seconds, [`LOAD_MEMORY`] bytes of Lua memory
//! beyond [`LOAD_MEMORY_PER_CODE_BYTE`] per byte of code, and string pattern searches whose worst case stays under
//! [`PATTERN_STEPS`] steps (Lua's matcher backtracks without yielding to the instruction count). A library beyond
//! these bounds is refused with a message naming the bound — where a server would eventually load it, this is
//! the one place rdbkit's verdict is stricter than the server's, and only for libraries that do real work while
//! loading (a library's top level normally only registers functions).
//!
//! Names across libraries (Redis and Valkey refuse "Function f already exists", case-insensitively, when two
//! libraries of one file register the same name) are checked by the readers, which see the libraries in order.

use super::Flavor;
use mlua::{HookTriggers, Lua, LuaOptions, StdLib, Value, VmState};
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Lua instructions a library's top level may run.
pub const LOAD_INSTRUCTIONS: u64 = 50_000_000;
/// Seconds a library's top level may run.
pub const LOAD_SECONDS: u64 = 5;
/// Bytes of Lua memory a library's top level may use, beyond [`LOAD_MEMORY_PER_CODE_BYTE`] per byte of code.
pub const LOAD_MEMORY: usize = 64 << 20;
/// Bytes of Lua memory allowed per byte of library code (its compiled form and constants).
pub const LOAD_MEMORY_PER_CODE_BYTE: usize = 16;
/// The worst-case steps a string pattern search may take (`find`, `match`, `gmatch`, `gsub`).
pub const PATTERN_STEPS: f64 = 2e8;

/// One function a library registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryFunction {
    /// The function's name (letters, digits and `_`).
    pub name: Vec<u8>,
    /// Its flags as given (matched case-insensitively against the servers' five).
    pub flags: Vec<Vec<u8>>,
    /// Its description, when given.
    pub description: Option<Vec<u8>>,
}

/// Why a run was stopped by rdbkit (not by the code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Instructions,
    Time,
    Memory,
    Pattern,
}

/// Runs a function library's top level (`code` is the whole library, `#!` line included) as the server of
/// `flavor` does when it loads the library from an RDB file, and returns the functions it registers, or the
/// server's reason to refuse it (or rdbkit's, when the code goes beyond the sandbox's bounds; see the module
/// documentation). The `#!` line itself is [`super::library_metadata`]'s to check.
pub fn library_functions(code: &[u8], flavor: Flavor) -> Result<Vec<LibraryFunction>, String> {
    let valkey = flavor == Flavor::Valkey;
    // The engine gets the code from the newline that ends the `#!` line; Valkey compiles it as a C string.
    let Some(nl) = code.iter().position(|&b| b == b'\n') else {
        return Err("Invalid library metadata".into());
    };
    let mut body = &code[nl..];
    if valkey {
        body = body.split(|&b| b == 0).next().unwrap_or_default();
    }
    let lua = Lua::new_with(StdLib::STRING, LuaOptions::default())
        .map_err(|e| format!("cannot start Lua to load the library: {e}"))?;
    let stop: Rc<Cell<Option<Stop>>> = Rc::new(Cell::new(None));
    let (env, registered) = setup(&lua, flavor, &stop).map_err(|e| format!("cannot prepare the Lua sandbox: {e}"))?;
    let chunk = lua.load(body).set_name("@user_function").set_mode(mlua::ChunkMode::Text).set_environment(env);
    let func = chunk.into_function().map_err(|e| format!("Error compiling function: {}", message(&e)))?;
    let budget = LOAD_MEMORY.saturating_add(body.len().saturating_mul(LOAD_MEMORY_PER_CODE_BYTE));
    let _ = lua.set_memory_limit(lua.used_memory().saturating_add(budget));
    let start = Instant::now();
    let executed = Cell::new(0u64);
    let hook_stop = stop.clone();
    const EVERY: u32 = 100;
    lua.set_hook(HookTriggers::new().every_nth_instruction(EVERY), move |_, _| {
        executed.set(executed.get() + u64::from(EVERY));
        let why = if executed.get() > LOAD_INSTRUCTIONS {
            Stop::Instructions
        } else if start.elapsed() > Duration::from_secs(LOAD_SECONDS) {
            Stop::Time
        } else {
            return Ok(VmState::Continue);
        };
        hook_stop.set(Some(why));
        Err(mlua::Error::RuntimeError("stopped by rdbkit".into()))
    });
    let ran = func.call::<()>(());
    lua.remove_hook();
    // The collected registrations are read with the limit lifted (reading allocates a little).
    let _ = lua.set_memory_limit(0);
    if let Err(e) = ran {
        let stop = stop.get().or_else(|| is_memory(&e).then_some(Stop::Memory));
        return Err(match stop {
            Some(Stop::Instructions) => format!(
                "the library's top level runs more than {LOAD_INSTRUCTIONS} Lua instructions (rdbkit's bound; the \
                 server runs it without a limit when it loads the file)"
            ),
            Some(Stop::Time) => format!(
                "the library's top level runs longer than {LOAD_SECONDS} s (rdbkit's bound; the server runs it \
                 without a limit when it loads the file)"
            ),
            Some(Stop::Memory) => {
                format!("the library's top level needs more than {} MiB of Lua memory (rdbkit's bound)", budget >> 20)
            }
            Some(Stop::Pattern) => format!(
                "the library's top level runs a string pattern search of more than {PATTERN_STEPS:e} steps in the \
                 worst case (rdbkit's bound)"
            ),
            None if valkey && message(&e).starts_with(VALKEY_LOG) => message(&e),
            None => format!("Error registering functions: {}", message(&e)),
        });
    }
    let functions = collect(&registered).map_err(|e| format!("cannot read the registered functions: {e}"))?;
    if valkey {
        // Valkey checks names after the top level ran.
        for (i, f) in functions.iter().enumerate() {
            if !valid_name(&f.name) {
                return Err("Function names can only contain letters, numbers, or underscores(_) and must be at \
                            least one character long"
                    .into());
            }
            if functions[..i].iter().any(|g| g.name == f.name) {
                return Err("Function already exists in the library".into());
            }
        }
    }
    if functions.is_empty() {
        return Err("No functions registered".into());
    }
    Ok(functions)
}

/// What a Valkey refusal for `server.log` starts with.
const VALKEY_LOG: &str = "Valkey 9.1 aborts";

/// A function name the servers take: letters, digits and `_`, at least one.
fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

fn is_memory(e: &mlua::Error) -> bool {
    match e {
        mlua::Error::MemoryError(_) => true,
        mlua::Error::CallbackError { cause, .. } => is_memory(cause),
        _ => false,
    }
}

/// The Lua error's message, without mlua's decoration (kind, traceback).
fn message(e: &mlua::Error) -> String {
    let text = match e {
        mlua::Error::RuntimeError(m) => m.clone(),
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::MemoryError(_) => "not enough memory".into(),
        mlua::Error::CallbackError { cause, .. } => return message(cause),
        other => other.to_string(),
    };
    match text.find("\nstack traceback:") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// The sandbox's Lua side: builds the environment the library's code runs in and the list its
/// `register_function` calls fill. It runs with the base library (which the library's code never sees).
const SETUP: &str = r##"
local valkey, version, version_num, pattern_check = ...
local error, type, select, next, tostring, tonumber, setmetatable, rawget =
  error, type, select, next, tostring, tonumber, setmetatable, rawget
local api_name = valkey and "server" or "redis"
local register = api_name .. ".register_function"
local string = string
local sfind, slower, ssub = string.find, string.lower, string.sub

-- The string methods' pattern searches are bounded (Lua's matcher does not count as instructions).
for _, name in next, {"find", "match", "gmatch", "gsub"} do
  local orig = string[name]
  string[name] = function(s, p, ...)
    pattern_check(name, s, p, ...)
    return orig(s, p, ...)
  end
end

local function fail(msg) error(msg, 0) end
local function is_string(v) local t = type(v) return t == "string" or t == "number" end
-- strcasecmp on C strings: up to the first NUL, ASCII case folded.
local function cstr_lower(s)
  local nul = sfind(s, "\0", 1, true)
  if nul then s = ssub(s, 1, nul - 1) end
  return slower(s)
end
local known_flags = {["no-writes"] = true, ["allow-oom"] = true, ["allow-stale"] = true,
                     ["no-cluster"] = true, ["allow-cross-slot-keys"] = true}

local registered = {}
local function read_flags(t)
  local flags, j = {}, 1
  while true do
    local v = t[j]
    if v == nil then return flags end
    if not is_string(v) then return nil end
    v = tostring(v)
    if not known_flags[cstr_lower(v)] then return nil end
    flags[#flags + 1] = v
    j = j + 1
  end
end

local function register_function(...)
  local argc = select("#", ...)
  if argc < 1 or argc > 2 then fail("wrong number of arguments to " .. register) end
  local name, callback, description, flags
  if argc == 1 then
    local t = ...
    if type(t) ~= "table" then
      fail("calling " .. register .. " with a single argument is only applicable to Lua table (representing named arguments).")
    end
    for key, value in next, t do
      if not is_string(key) then fail("named argument key given to " .. register .. " is not a string") end
      local k = cstr_lower(tostring(key))
      if k == "function_name" then
        if not is_string(value) then fail("function_name argument given to " .. register .. " must be a string") end
        name = tostring(value)
      elseif k == "description" then
        if not is_string(value) then fail("description argument given to " .. register .. " must be a string") end
        description = tostring(value)
      elseif k == "callback" then
        if type(value) ~= "function" then fail("callback argument given to " .. register .. " must be a function") end
        callback = value
      elseif k == "flags" then
        if type(value) ~= "table" then
          fail("flags argument to " .. register .. " must be a table representing function flags")
        end
        flags = read_flags(value)
        if flags == nil then fail("unknown flag given") end
      else
        fail("unknown argument given to " .. register)
      end
    end
    if name == nil then fail(register .. " must get a function name argument") end
    if callback == nil then fail(register .. " must get a callback argument") end
  else
    local first, second = ...
    if not is_string(first) then fail("first argument to " .. register .. " must be a string") end
    if type(second) ~= "function" then fail("second argument to " .. register .. " must be a function") end
    name = tostring(first)
  end
  if not valkey then
    -- Redis checks each name as it is registered (with its message for library names).
    if not sfind(name, "^[A-Za-z0-9_]+$") then
      fail("Library names can only contain letters, numbers, or underscores(_) and must be at least one character long")
    end
    for i = 1, #registered do
      if registered[i].name == name then fail("Function already exists in the library") end
    end
  end
  registered[#registered + 1] = {name = name, flags = flags or {}, description = description}
end

local function log(...)
  if valkey then
    fail("Valkey 9.1 aborts (assertion 'rctx' in script_lua.c) when a library calls server.log while it loads")
  end
  local argc = select("#", ...)
  if argc < 2 then fail("redis.log() requires two arguments or more.") end
  local level = tonumber((...))
  if level == nil then fail("First argument must be a number (log level).") end
  -- (int) of a double: toward zero; NaN and out-of-range values are not a level.
  if level ~= level or level <= -1 or level >= 4 then fail("Invalid debug level.") end
end

local api = {
  register_function = register_function,
  log = log,
  LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
  REDIS_VERSION = version, REDIS_VERSION_NUM = version_num,
}
if valkey then api.SERVER_NAME = "valkey" api.VALKEY_VERSION = "9.1.2" api.VALKEY_VERSION_NUM = 590082 end

local function readonly(t)
  return setmetatable({}, {
    __index = function(_, k)
      local v = rawget(t, k)
      if v == nil then
        error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
      end
      return v
    end,
    __newindex = function() error("Attempt to modify a readonly table", 2) end,
  })
end
local lib = readonly(api)
local globals = {redis = lib}
if valkey then globals.server = lib end
return readonly(globals), registered
"##;

fn setup(lua: &Lua, flavor: Flavor, stop: &Rc<Cell<Option<Stop>>>) -> mlua::Result<(mlua::Table, mlua::Table)> {
    let (version, num) = match flavor {
        Flavor::Valkey => ("7.2.4", 0x07_02_04),
        // Redis files the version maps to Redis 7.0 (RDB ≤ 10) or 8.2; the numbers only matter to code that
        // branches on them, and both register the same way.
        _ => ("7.0.15", 0x07_00_0f),
    };
    let pattern_stop = stop.clone();
    let check = lua.create_function(move |lua, args: mlua::MultiValue| {
        let name = args.front().and_then(|v| v.as_str().map(|s| s.to_string())).unwrap_or_default();
        let text = |v: Option<&Value>| -> mlua::Result<Option<Vec<u8>>> {
            Ok(match v {
                Some(v @ (Value::String(_) | Value::Integer(_) | Value::Number(_))) => {
                    lua.coerce_string(v.clone())?.map(|s| s.as_bytes().to_vec())
                }
                _ => None,
            })
        };
        let (Some(subject), Some(pattern)) = (text(args.get(1))?, text(args.get(2))?) else {
            return Ok(()); // the string function raises its own argument error
        };
        let plain = name == "find" && (args.get(4).is_some_and(|v| !matches!(v, Value::Nil | Value::Boolean(false))));
        if pattern_steps(&name, subject.len(), &pattern, plain) > PATTERN_STEPS {
            pattern_stop.set(Some(Stop::Pattern));
            return Err(mlua::Error::RuntimeError("stopped by rdbkit".into()));
        }
        Ok(())
    })?;
    let f: mlua::Function = lua.load(SETUP).set_name("=rdbkit_sandbox").into_function()?;
    f.call((flavor == Flavor::Valkey, version, num, check))
}

fn collect(registered: &mlua::Table) -> mlua::Result<Vec<LibraryFunction>> {
    let mut out = Vec::new();
    for entry in registered.clone().sequence_values::<mlua::Table>() {
        let entry = entry?;
        let bytes = |v: Value| v.as_string().map(|s| s.as_bytes().to_vec());
        let name = bytes(entry.get("name")?).unwrap_or_default();
        let description = bytes(entry.get("description")?);
        let flags_table: mlua::Table = entry.get("flags")?;
        let flags: mlua::Result<Vec<Vec<u8>>> =
            flags_table.sequence_values::<mlua::String>().map(|f| f.map(|f| f.as_bytes().to_vec())).collect();
        out.push(LibraryFunction { name, flags: flags?, description });
    }
    Ok(out)
}

/// The worst-case steps of Lua 5.1's matcher for `pattern` over a subject of `n` bytes: a start position for
/// each byte (one when anchored), times `n + 1` for each item that can backtrack over the subject (`*`, `+`,
/// `-`, `%b`, a back-reference) and 2 for each `?`, times the pattern's length. A plain `find` is `n` × length.
fn pattern_steps(function: &str, n: usize, pattern: &[u8], plain: bool) -> f64 {
    let m = n as f64 + 1.0;
    let len = pattern.len() as f64 + 1.0;
    const SPECIALS: &[u8] = b"^$*+?.([%-";
    if function == "find" && (plain || !pattern.iter().any(|b| SPECIALS.contains(b))) {
        return m * len;
    }
    let mut i = 0;
    // gmatch in Lua 5.1 takes `^` literally (no anchor).
    let anchored = function != "gmatch" && pattern.first() == Some(&b'^');
    if anchored {
        i = 1;
    }
    let mut product = 1.0f64;
    while i < pattern.len() {
        let single = match pattern[i] {
            b'(' | b')' => {
                i += 1;
                continue;
            }
            b'%' => match pattern.get(i + 1) {
                Some(b'b') => {
                    product *= m;
                    i += 4;
                    false
                }
                Some(b'f') => {
                    i = class_end(pattern, i + 2);
                    false
                }
                Some(d) if d.is_ascii_digit() => {
                    product *= m;
                    i += 2;
                    false
                }
                _ => {
                    i += 2;
                    true
                }
            },
            b'[' => {
                i = class_end(pattern, i);
                true
            }
            _ => {
                i += 1;
                true
            }
        };
        if single {
            match pattern.get(i) {
                Some(b'*' | b'+' | b'-') => {
                    product *= m;
                    i += 1;
                }
                Some(b'?') => {
                    product *= 2.0;
                    i += 1;
                }
                _ => {}
            }
        }
        if product > PATTERN_STEPS {
            break;
        }
    }
    (if anchored { 1.0 } else { m }) * product * len
}

/// Where a `[set]` starting at `at` ends (one past its `]`), as Lua 5.1's `classEnd` reads it.
fn class_end(p: &[u8], at: usize) -> usize {
    if p.get(at) != Some(&b'[') {
        return at + 1;
    }
    let mut i = at + 1;
    if p.get(i) == Some(&b'^') {
        i += 1;
    }
    loop {
        let Some(&c) = p.get(i) else {
            return p.len();
        };
        i += 1;
        if c == b'%' {
            i += 1;
        }
        if p.get(i) == Some(&b']') {
            return i + 1;
        }
        if i >= p.len() {
            return p.len();
        }
    }
}

/// The functions of the libraries of one file so far, for the check across libraries: the servers refuse a library
/// that registers a name another library of the file registered ("Function f already exists"), comparing names
/// case-insensitively (within one library, `f` and `F` may both be registered). Memory: the names, bounded by the
/// file's size.
#[derive(Debug, Default)]
pub(crate) struct Libraries {
    /// The registered names, ASCII lowercase.
    names: std::collections::HashSet<Vec<u8>>,
}

impl Libraries {
    /// Loads the library `code` ([`library_functions`]) and checks its names against the earlier libraries'.
    pub(crate) fn load(&mut self, code: &[u8], flavor: Flavor) -> Result<(), String> {
        let functions = library_functions(code, flavor)?;
        for f in &functions {
            if self.names.contains(&f.name.to_ascii_lowercase()) {
                return Err(format!("Function {} already exists", String::from_utf8_lossy(&f.name)));
            }
        }
        self.names.extend(functions.into_iter().map(|f| f.name.to_ascii_lowercase()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(body: &str) -> Result<Vec<LibraryFunction>, String> {
        library_functions(format!("#!lua name=lib\n{body}").as_bytes(), Flavor::Redis)
    }

    fn names(body: &str) -> Vec<String> {
        run(body).unwrap().into_iter().map(|f| String::from_utf8(f.name).unwrap()).collect()
    }

    #[test]
    fn both_forms_register() {
        assert_eq!(names("redis.register_function('f', function() return 1 end)"), ["f"]);
        let t = "redis.register_function{function_name='g', callback=function() end, flags={'NO-WRITES', \
                 'allow-oom'}, description='d'}";
        let f = run(t).unwrap();
        assert_eq!(f[0].name, b"g");
        assert_eq!(f[0].flags, [b"NO-WRITES".to_vec(), b"allow-oom".to_vec()]);
        assert_eq!(f[0].description.as_deref(), Some(&b"d"[..]));
        // Numbers are strings; the method form passes `redis` as one more argument.
        assert_eq!(names("redis.register_function(12, redis.log)"), ["12"]);
        assert!(run("redis:register_function('f', function() end)").unwrap_err().contains("wrong number"));
        // Built names and string methods work at load.
        assert_eq!(names("local n = ('ab'):rep(2) redis['register_' .. 'function'](n, function() end)"), ["abab"]);
        // Same name, other case: allowed within a library.
        assert_eq!(
            names("redis.register_function('f', redis.log) redis.register_function('F', redis.log)"),
            ["f", "F"]
        );
    }

    #[test]
    fn the_servers_refusals() {
        // Each message as Redis 7.0/8.2 answered FUNCTION LOAD for the same code.
        for (body, want) in [
            ("local x = 1", "No functions registered"),
            (
                "redis.register_function('f', redis.log) redis.register_function('f', redis.log)",
                "Error registering functions: Function already exists in the library",
            ),
            (
                "redis.call('set','a','b')",
                "user_function:2: Script attempted to access nonexistent global variable 'call'",
            ),
            ("local t = string.rep('x', 3)", "nonexistent global variable 'string'"),
            ("server.register_function('f', redis.log)", "nonexistent global variable 'server'"),
            ("x = 1", "user_function:2: Attempt to modify a readonly table"),
            ("redis.x = 1", "user_function:2: Attempt to modify a readonly table"),
            (
                "redis.register_function{function_name='f', callback=redis.log, flags={'no-writes','bogus'}}",
                "unknown flag given",
            ),
            ("redis.register_function{function_name='f', callback=redis.log, flags={1}}", "unknown flag given"),
            (
                "redis.register_function{function_name='f', callback=redis.log, flags='no-writes'}",
                "must be a table representing function flags",
            ),
            (
                "redis.register_function{function_name='f', callback=redis.log, [1]=2}",
                "unknown argument given to redis.register_function",
            ),
            ("redis.register_function{callback=redis.log}", "must get a function name argument"),
            ("redis.register_function{function_name='f'}", "must get a callback argument"),
            (
                "redis.register_function{function_name='f', callback=redis.log, description=true}",
                "description argument given",
            ),
            ("redis.register_function('f-x', redis.log)", "Library names can only contain"),
            ("redis.register_function('')", "only applicable to Lua table"),
            ("redis.register_function()", "wrong number of arguments to redis.register_function"),
            ("redis.register_function('f', function() end, 3)", "wrong number of arguments"),
            ("redis.register_function('f', 3)", "second argument to redis.register_function must be a function"),
            ("redis.log()", "redis.log() requires two arguments or more."),
            ("redis.log('x', 'y')", "First argument must be a number"),
            ("redis.log(4, 'y')", "Invalid debug level."),
            ("redis.register_function('f', function( end)", "Error compiling function: user_function:2:"),
        ] {
            let got = run(body).unwrap_err();
            assert!(got.contains(want), "{body}: {got}");
        }
        assert_eq!(
            names("redis.log(redis.LOG_WARNING, 'hi') redis.log(-0.5, 'x') redis.register_function('f', redis.log)"),
            ["f"]
        );
    }

    #[test]
    fn valkey_has_server_and_checks_names_after_the_run() {
        let v = |body: &str| library_functions(format!("#!lua name=lib\n{body}").as_bytes(), Flavor::Valkey);
        assert_eq!(v("server.register_function('f', redis.log)").unwrap()[0].name, b"f");
        let e = v("server.register_function('f-x', redis.log)").unwrap_err();
        assert!(e.starts_with("Function names can only contain"), "{e}");
        assert_eq!(
            v("redis.register_function('f', redis.log) redis.register_function('f', redis.log)").unwrap_err(),
            "Function already exists in the library"
        );
        assert!(
            v("server.log(server.LOG_WARNING, 'x') server.register_function('f', redis.log)")
                .unwrap_err()
                .contains("Valkey 9.1 aborts")
        );
        assert!(v("redis.register_function(redis.SERVER_NAME, redis.log)").is_ok());
        // Valkey compiles the code as a C string: what follows a NUL is not code.
        assert!(v("redis.register_function('f', redis.log)\0 garbage(").is_ok());
        assert!(run("redis.register_function('f', redis.log)\0 garbage(").is_err());
    }

    #[test]
    fn hostile_code_is_bounded() {
        let t = Instant::now();
        // The instruction count stops it, or the clock on a busy machine.
        let e = run("while true do end").unwrap_err();
        assert!(e.contains("Lua instructions") || e.contains("longer than"), "{e}");
        let e = run("local s = 'x' while true do s = s .. s end").unwrap_err();
        assert!(e.contains("MiB of Lua memory"), "{e}");
        let e = run("local t = {} for i = 1, 1e9 do t[i] = i end").unwrap_err();
        assert!(e.contains("MiB of Lua memory"), "{e}");
        let e = run("local s = ('a'):rep(40000) s:find('.-.-.-.-b')").unwrap_err();
        assert!(e.contains("pattern search"), "{e}");
        let e = run("local s = ('a'):rep(1e6) local p = ('a'):rep(5e5) .. 'b' s:find(p, 1, true)").unwrap_err();
        assert!(e.contains("pattern search"), "{e}");
        // C work between instruction counts is bounded by time.
        let e = run("local s = ('x'):rep(2^24) for i = 1, 1e9 do local t = s .. i end").unwrap_err();
        assert!(e.contains("longer than") || e.contains("instructions") || e.contains("memory"), "{e}");
        // Ordinary pattern use passes.
        assert_eq!(names("local a = ('k=v'):match('^(%w+)=(%w+)$') redis.register_function(a, redis.log)"), ["k"]);
        assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    }

    #[test]
    fn names_across_libraries_are_case_insensitive() {
        let mut libs = Libraries::default();
        libs.load(b"#!lua name=a\nredis.register_function('f1', redis.log)", Flavor::Redis).unwrap();
        let e = libs.load(b"#!lua name=b\nredis.register_function('F1', redis.log)", Flavor::Redis).unwrap_err();
        assert_eq!(e, "Function F1 already exists");
        libs.load(b"#!lua name=c\nredis.register_function('f2', redis.log)", Flavor::Redis).unwrap();
    }

    #[test]
    fn pattern_steps_model() {
        assert_eq!(pattern_steps("find", 9, b"abc", false), 10.0 * 4.0);
        assert_eq!(pattern_steps("match", 9, b"^a*", false), 10.0 * 4.0);
        assert_eq!(pattern_steps("match", 9, b"a?b", false), 10.0 * 2.0 * 4.0);
        assert_eq!(pattern_steps("gsub", 9, b"[%]]*", false), 10.0 * 10.0 * 6.0);
        assert_eq!(class_end(b"[]]x", 0), 3);
        assert_eq!(class_end(b"[^%a]x", 0), 5);
        assert_eq!(class_end(b"[abc", 0), 4);
    }
}
