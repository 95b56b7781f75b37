//! Counts the filter's hostcalls, for the benchmark only.
//!
//! `bench-hostcalls IN.wasm OUT.wasm` rewrites a module built with the filter's `hostcall-stats`
//! feature: every call to an imported `proxy_*` function goes through a wrapper that adds one
//! to a global of its own, and the feature's two imports from `mcp_authn_stats` become local
//! functions that read those globals. So the count costs no hostcall, and the filter's tick
//! publishes it (src/host/hostcall_stats.rs). The shipped module is never rewritten.

use std::collections::HashMap;
use std::process::ExitCode;

use walrus::ir::{BinaryOp, Instr, MemArg, StoreKind, Value};
use walrus::{
    ConstExpr, ElementItems, FunctionBuilder, FunctionId, GlobalId, InstrSeqBuilder, LocalId,
    Module, ValType,
};

/// The feature's imports (see src/host/hostcall_stats.rs).
const STATS_MODULE: &str = "mcp_authn_stats";
/// `hostcall_name(index: i32, buf: i32) -> i32`: writes import `index`'s name to `buf`
/// (at most [`NAME_MAX`] bytes) and returns its length; 0 past the last import.
const NAME_FN: &str = "hostcall_name";
/// `hostcall_count(index: i32) -> i64`: how often import `index` was called.
const COUNT_FN: &str = "hostcall_count";
const NAME_MAX: usize = 64;

struct Counted {
    name: String,
    counter: GlobalId,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, input, output] = args.as_slice() else {
        eprintln!("usage: bench-hostcalls IN.wasm OUT.wasm");
        return ExitCode::from(2);
    };
    match rewrite(input, output) {
        Ok(n) => {
            eprintln!("bench-hostcalls: {n} proxy_* imports counted in {output}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("bench-hostcalls: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn rewrite(input: &str, output: &str) -> walrus::Result<usize> {
    let mut module = Module::from_file(input)?;
    let imports: Vec<(FunctionId, String)> = module
        .imports
        .iter()
        .filter_map(|import| match import.kind {
            walrus::ImportKind::Function(f) if import.name.starts_with("proxy_") => {
                Some((f, import.name.clone()))
            }
            _ => None,
        })
        .collect();
    let mut wrappers = HashMap::new();
    let mut counted = Vec::new();
    for (import, name) in imports {
        if name.len() > NAME_MAX {
            return Err(fail(format!(
                "import name longer than {NAME_MAX} bytes: {name}"
            )));
        }
        let counter =
            module
                .globals
                .add_local(ValType::I64, true, false, ConstExpr::Value(Value::I64(0)));
        wrappers.insert(import, wrapper(&mut module, import, counter));
        counted.push(Counted { name, counter });
    }
    let wrapper_ids: Vec<FunctionId> = wrappers.values().copied().collect();
    for (id, function) in module.funcs.iter_local_mut() {
        if wrapper_ids.contains(&id) {
            continue;
        }
        let entry = function.entry_block();
        walrus::ir::dfs_pre_order_mut(&mut Redirect(&wrappers), function, entry);
    }
    for element in module.elements.iter_mut() {
        if let ElementItems::Functions(funcs) = &mut element.items {
            for f in funcs.iter_mut() {
                if let Some(w) = wrappers.get(f) {
                    *f = *w;
                }
            }
        }
    }
    let name_fn = module.imports.get_func(STATS_MODULE, NAME_FN)?;
    let count_fn = module.imports.get_func(STATS_MODULE, COUNT_FN)?;
    let memory = module
        .memories
        .iter()
        .next()
        .map(|m| m.id())
        .ok_or_else(|| fail("no memory".into()))?;
    module.replace_imported_func(count_fn, |(body, args)| {
        let index = args[0];
        for (i, c) in counted.iter().enumerate() {
            when_index(body, index, i, |then| {
                then.global_get(c.counter).return_();
            });
        }
        body.i64_const(0);
    })?;
    module.replace_imported_func(name_fn, |(body, args)| {
        let (index, buf) = (args[0], args[1]);
        for (i, c) in counted.iter().enumerate() {
            when_index(body, index, i, |then| {
                for (offset, byte) in c.name.bytes().enumerate() {
                    then.local_get(buf).i32_const(i32::from(byte)).store(
                        memory,
                        StoreKind::I32_8 { atomic: false },
                        MemArg {
                            align: 1,
                            offset: offset as u64,
                        },
                    );
                }
                then.i32_const(c.name.len() as i32).return_();
            });
        }
        body.i32_const(0);
    })?;
    module.emit_wasm_file(output)?;
    Ok(counted.len())
}

/// `if (index == i) { then }`, with nothing left on the stack.
fn when_index(
    body: &mut InstrSeqBuilder,
    index: LocalId,
    i: usize,
    then: impl FnOnce(&mut InstrSeqBuilder),
) {
    body.local_get(index)
        .i32_const(i as i32)
        .binop(BinaryOp::I32Eq)
        .if_else(None, then, |_| {});
}

/// A function with the import's signature that counts, then calls the import.
fn wrapper(module: &mut Module, import: FunctionId, counter: GlobalId) -> FunctionId {
    let ty = module.types.get(module.funcs.get(import).ty()).clone();
    let mut builder = FunctionBuilder::new(&mut module.types, ty.params(), ty.results());
    let params: Vec<LocalId> = ty.params().iter().map(|t| module.locals.add(*t)).collect();
    let mut body = builder.func_body();
    body.global_get(counter)
        .i64_const(1)
        .binop(BinaryOp::I64Add)
        .global_set(counter);
    for p in &params {
        body.local_get(*p);
    }
    body.call(import);
    builder.finish(params, &mut module.funcs)
}

/// Sends every direct call of a counted import to its wrapper.
struct Redirect<'a>(&'a HashMap<FunctionId, FunctionId>);

impl walrus::ir::VisitorMut for Redirect<'_> {
    fn visit_instr_mut(&mut self, instr: &mut Instr, _: &mut walrus::InstrLocId) {
        match instr {
            Instr::Call(call) => {
                if let Some(w) = self.0.get(&call.func) {
                    call.func = *w;
                }
            }
            Instr::ReturnCall(call) => {
                if let Some(w) = self.0.get(&call.func) {
                    call.func = *w;
                }
            }
            _ => {}
        }
    }
}

fn fail(message: String) -> anyhow::Error {
    anyhow::Error::msg(message)
}
