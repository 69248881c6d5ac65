//! A test guest that exercises every storage call of the Rust SDK against the real host and
//! answers "ok" or the first mismatch: batches, listing options, transactions, limits, typed
//! values and error statuses (the Rust twin of tests/guests/sdkcheck). POST /run runs the checks;
//! POST /panic panics after a write, POST /fail returns an error after a write (both must fail
//! the event with their message and roll the write back).

use dowasm::{
    Context, Error, ListOptions, Object, Request, Response, Result, Status, Storage, MAX_BATCH,
    MAX_ENTRY_SIZE, MAX_KEY_SIZE,
};

struct Checker {
    ctx: Context,
    store: Storage,
}

fn keys(es: &[dowasm::Entry]) -> String {
    es.iter()
        .map(|e| String::from_utf8_lossy(&e.key).into_owned())
        .collect::<Vec<_>>()
        .join(",")
}

fn expect(cond: bool, what: impl FnOnce() -> String) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(Error::new(what()))
    }
}

fn expect_status<T: std::fmt::Debug>(r: Result<T>, s: Status, what: &str) -> Result<()> {
    match r {
        Err(e) if e.is(s) => Ok(()),
        other => Err(Error::new(format!("{}: {:?}, want {}", what, other, s.name()))),
    }
}

impl Checker {
    fn run(&self) -> Result<()> {
        let st = &self.store;
        st.delete_all()?;
        // batches
        let entries: Vec<(String, String)> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|k| (k.to_string(), format!("v{}", k)))
            .collect();
        st.put_many(&entries)?;
        let got = st.get_many(&["a", "zz", "e"])?;
        expect(
            got == vec![Some(b"va".to_vec()), None, Some(b"ve".to_vec())],
            || format!("get_many: {:?}", got),
        )?;
        let n = st.delete_many(&["d", "zz"])?;
        expect(n == 1, || format!("delete_many: {}", n))?;
        let too_many: Vec<Vec<u8>> = (0..=MAX_BATCH).map(|i| vec![i as u8]).collect();
        expect_status(st.get_many(&too_many), Status::TooManyKeys, "get_many of 129 keys")?;
        // listing
        let cases = vec![
            (ListOptions::new(), "a,b,c,e"),
            (ListOptions::new().reverse(true).limit(2), "e,c"),
            (ListOptions::new().start("b").end("e"), "b,c"),
            (ListOptions::new().start_after("b"), "c,e"),
            (ListOptions::new().prefix("c"), "c"),
            (ListOptions::new().prefix("x"), ""),
        ];
        for (o, want) in cases {
            let got = keys(&st.list(&o)?);
            expect(got == want, || format!("list({:?}) = {:?}, want {:?}", o, got, want))?;
        }
        expect_status(
            st.list(&ListOptions::new().start("a").start_after("a")),
            Status::InvalidArgument,
            "list with start and start_after",
        )?;
        // transactions: a failing one rolls back, nesting works
        let r: Result<()> = st.transaction(|tx| {
            tx.put_string("t1", "x")?;
            Err(Error::new("boom"))
        });
        expect(
            matches!(&r, Err(e) if e.message().contains("boom")),
            || format!("failing transaction returned {:?}", r),
        )?;
        expect(st.get_string("t1")?.is_none(), || {
            "a failed transaction's write is visible".into()
        })?;
        st.transaction(|tx| {
            tx.put_string("outer", "1")?;
            let inner: Result<()> = tx.transaction(|tx2| {
                tx2.put_string("inner", "1")?;
                Err(Error::new("roll back"))
            });
            expect(inner.is_err(), || "inner transaction succeeded".into())
        })?;
        expect(st.get_string("outer")?.is_some(), || {
            "outer transaction lost its write".into()
        })?;
        expect(st.get_string("inner")?.is_none(), || {
            "rolled back inner transaction kept its write".into()
        })?;
        // limits and typed values
        expect_status(
            st.put(vec![b'k'; MAX_KEY_SIZE + 1], b""),
            Status::KeyTooLarge,
            "long key",
        )?;
        expect_status(
            st.put("k", vec![0u8; MAX_ENTRY_SIZE]),
            Status::ValueTooLarge,
            "large value",
        )?;
        st.put_i64("n", -42)?;
        let n = st.get_i64("n")?;
        expect(n == Some(-42), || format!("get_i64: {:?}", n))?;
        expect(st.get_i64("a").is_err(), || "get_i64 of a non-number succeeded".into())?;
        expect(st.delete("a")?, || "delete of an existing key returned false".into())?;
        expect(st.get("a")?.is_none(), || "deleted key still found".into())?;
        let id = self.ctx.id();
        expect(id.len() == 64, || format!("id {:?}", id))?;
        let name = self.ctx.name();
        expect(name.as_deref() == Some("check"), || format!("name {:?}", name))?;
        self.ctx.log(dowasm::Level::Info, "sdkcheck passed");
        Ok(())
    }
}

impl Object for Checker {
    fn new(ctx: &Context) -> Result<Self> {
        Ok(Checker {
            ctx: *ctx,
            store: ctx.storage(),
        })
    }

    fn fetch(&mut self, req: Request) -> Result<Response> {
        match req.path.as_str() {
            "/run" => Ok(match self.run() {
                Ok(()) => Response::text(200, "ok"),
                Err(e) => Response::text(500, e.to_string()),
            }),
            "/panic" => {
                self.store.put("lost", "x")?;
                panic!("deliberate panic after a write");
            }
            "/fail" => {
                self.store.put("lost", "x")?;
                Err(Error::new("deliberate error after a write"))
            }
            "/lost" => Ok(Response::text(
                200,
                format!("{}", self.store.get("lost")?.is_some()),
            )),
            _ => Ok(Response::text(404, "POST /run")),
        }
    }
}

dowasm::export!(Checker);
