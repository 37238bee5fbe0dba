// Readiness probe used by scripts/ferretdb.sh: connect to the MongoDB URI in
// argv[2] with the official driver and run {ping: 1}. Exit 0 on success.
// The driver is installed under ~/.cache/notify/node-tools (found via NODE_PATH).
'use strict';
const { MongoClient } = require('mongodb');

async function main() {
  const uri = process.argv[2];
  const client = new MongoClient(uri, {
    serverSelectionTimeoutMS: 2000,
    connectTimeoutMS: 2000,
    directConnection: true,
  });
  try {
    await client.connect();
    const res = await client.db('admin').command({ ping: 1 });
    if (res.ok !== 1) throw new Error('ping returned ' + JSON.stringify(res));
  } finally {
    await client.close();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error('ping failed: ' + (err && err.message));
    process.exit(1);
  },
);
