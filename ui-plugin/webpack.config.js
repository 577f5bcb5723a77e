// Builds the folder WebAdmin serves: dist/olvm-backup.json (the descriptor, installed into
// /usr/share/ovirt-engine/ui-plugins/) and dist/olvm-backup/ (its resourcePath), whose files
// WebAdmin serves at /ovirt-engine/webadmin/plugin/olvm-backup/ (reference §1.5).
const path = require('path');
const HtmlWebpackPlugin = require('html-webpack-plugin');
const MiniCssExtractPlugin = require('mini-css-extract-plugin');
const CopyWebpackPlugin = require('copy-webpack-plugin');
const CssMinimizerPlugin = require('css-minimizer-webpack-plugin');

const PLUGIN_NAME = 'olvm-backup';
const PUBLIC_PATH = `/ovirt-engine/webadmin/plugin/${PLUGIN_NAME}/`;

const page = (filename, chunk, title) =>
  new HtmlWebpackPlugin({
    filename,
    chunks: [chunk],
    inject: 'body',
    scriptLoading: 'defer',
    templateContent: `<!doctype html>
<html lang="en">
  <head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${title}</title></head>
  <body>${chunk === 'plugin' ? '' : '<div id="root"></div>'}</body>
</html>
`,
  });

module.exports = (_env, argv) => ({
  mode: argv.mode || 'production',
  context: __dirname,
  entry: {
    plugin: './src/entries/plugin.ts',
    place: './src/entries/place.tsx',
    'vm-tab': './src/entries/vmTab.tsx',
    restore: './src/entries/restore.tsx',
  },
  output: {
    path: path.join(__dirname, 'dist', PLUGIN_NAME),
    publicPath: PUBLIC_PATH,
    filename: 'js/[name].[contenthash:8].js',
    chunkFilename: 'js/[name].[contenthash:8].js',
    assetModuleFilename: 'assets/[name].[contenthash:8][ext]',
    clean: true,
  },
  devtool: false,
  resolve: { extensions: ['.ts', '.tsx', '.js', '.mjs'] },
  module: {
    rules: [
      {
        test: /\.tsx?$/,
        exclude: /node_modules/,
        use: { loader: 'ts-loader', options: { configFile: path.join(__dirname, 'tsconfig.json'), transpileOnly: true, compilerOptions: { noEmit: false, sourceMap: false } } },
      },
      { test: /\.css$/, use: [MiniCssExtractPlugin.loader, 'css-loader'] },
      { test: /\.(woff2?|ttf|eot|svg|png|jpe?g|gif)$/, type: 'asset/resource' },
    ],
  },
  optimization: {
    splitChunks: { chunks: 'all', cacheGroups: { vendor: { test: /[\\/]node_modules[\\/]/, name: 'vendor', chunks: (c) => c.name !== 'plugin' } } },
    minimizer: ['...', new CssMinimizerPlugin()],
  },
  performance: { hints: false },
  plugins: [
    // PatternFly's component styles are class-scoped: their relative order across chunks does not matter
    new MiniCssExtractPlugin({ filename: 'css/[name].[contenthash:8].css', ignoreOrder: true }),
    page('plugin.html', 'plugin', 'olvm-backup'),
    page('place.html', 'place', 'Backup'),
    page('vm-tab.html', 'vm-tab', 'Backups'),
    page('restore.html', 'restore', 'Restore'),
    new CopyWebpackPlugin({ patterns: [{ from: 'static/olvm-backup.json', to: `../${PLUGIN_NAME}.json` }] }),
  ],
  stats: 'errors-warnings',
});
