// Reads a JSON array of xAPI statements on stdin and validates each with
// Learning Locker's validator. Prints one JSON line per problem
// ({"index", "path", "warning"}) and exits 1 when there is any.
const validate = require('@learninglocker/xapi-validation').default;

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const statements = JSON.parse(input);
  let problems = 0;
  statements.forEach((statement, index) => {
    for (const w of validate(statement)) {
      problems++;
      console.log(JSON.stringify({ index, path: w.path.join('.'), warning: w.name, data: w.data }));
    }
  });
  process.exit(problems > 0 ? 1 : 0);
});
