'use strict'
// petrel's benchmark: a durable Maildir queue plugin for Haraka.
//
// No reverse DNS lookups, and every recipient is accepted (the benchmark's
// clients are all on loopback).
// A transaction whose recipients are all in the local domain is written to
// MAILDIR/tmp/NAME, fsync'ed, renamed into MAILDIR/new/NAME, and new/ is
// fsync'ed, and only then is the client told 250 -- the same promise petrel
// makes (and Postfix, which fsyncs its queue file before 250). Anything else
// is left to the next queue plugin (queue/smtp_forward in the relay runs).
//
// Config: config/bench_maildir.ini
//   [main]
//   maildir=/abs/path/to/Maildir      (with tmp/ new/ cur/)
//   domain=bench.test

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

let seq = 0
const host = os.hostname().replace(/[/:]/g, '_')

exports.register = function () {
    this.cfg = this.config.get('bench_maildir.ini')
    this.maildir = this.cfg.main.maildir
    this.domain = (this.cfg.main.domain || 'bench.test').toLowerCase()
    this.register_hook('lookup_rdns', 'no_rdns')
    this.register_hook('rcpt', 'accept_rcpt')
    this.register_hook('queue', 'queue_maildir')
}

// No reverse DNS: the benchmark talks to loopback only (Postfix runs with
// smtpd_peername_lookup = no for the same reason).
exports.no_rdns = function (next, connection) {
    next(OK, connection.remote.ip === '127.0.0.1' ? 'localhost' : 'unknown')
}

exports.accept_rcpt = function (next) {
    next(OK)
}

exports.queue_maildir = function (next, connection) {
    const txn = connection.transaction
    const local = txn.rcpt_to.every((r) => String(r.host || '').toLowerCase() === this.domain)
    if (!local) return next()

    const name = `${Date.now()}.P${process.pid}Q${++seq}.${host}`
    const tmp = path.join(this.maildir, 'tmp', name)
    const dst = path.join(this.maildir, 'new', name)
    const newdir = path.join(this.maildir, 'new')
    let done = false
    const finish = (err) => {
        if (done) return
        done = true
        if (err) {
            connection.logerror(this, `maildir: ${err.message}`)
            fs.unlink(tmp, () => next(DENYSOFT, 'Maildir write failed'))
            return
        }
        next(OK, 'Message queued')
    }

    const from = txn.mail_from
    const addr = typeof from.address === 'function' ? from.address() : from.address
    txn.add_leading_header('Return-Path', `<${addr || ''}>`)
    fs.open(tmp, 'wx', 0o600, (err, fd) => {
        if (err) return finish(err)
        const ws = fs.createWriteStream(null, { fd, autoClose: false })
        ws.on('error', (e) => fs.close(fd, () => finish(e)))
        ws.on('finish', () => {
            fs.fsync(fd, (e1) => {
                fs.close(fd, (e2) => {
                    if (e1 || e2) return finish(e1 || e2)
                    fs.rename(tmp, dst, (e3) => {
                        if (e3) return finish(e3)
                        fs.open(newdir, 'r', (e4, dfd) => {
                            if (e4) return finish(e4)
                            fs.fsync(dfd, (e5) => fs.close(dfd, () => finish(e5)))
                        })
                    })
                })
            })
        })
        txn.message_stream.pipe(ws, { line_endings: '\n' })
    })
}
